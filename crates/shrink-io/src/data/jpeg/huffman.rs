//! Huffman tables and the entropy-coded bit stream: byte unstuffing (`FF 00`), markers ending
//! the data, and a check that no bit past the real data was ever used.

use super::JpegError;

/// Code lengths resolved by one table look-up.
const LOOKUP_BITS: u32 = 9;

/// A Huffman decoding table (JPEG Annex C / F.2.2.3).
pub(super) struct HuffTable {
    /// Indexed by the next `LOOKUP_BITS` bits: `length << 8 | symbol`, or 0 for longer codes.
    lookup: Box<[u16; 1 << LOOKUP_BITS]>,
    /// For AC tables, indexed like `lookup`: when a code and the value bits after it both fit
    /// in the look-up bits, `value << 16 | run << 8 | total length`; else 0.
    ac_fast: Box<[i32; 1 << LOOKUP_BITS]>,
    /// For each length 1..=16: the largest code of that length (-1 when none) and the offset
    /// from a code of that length to its index in `values`.
    maxcode: [i32; 18],
    valoffset: [i32; 17],
    values: Vec<u8>,
}

impl HuffTable {
    /// Builds a table from the code counts per length and the symbols; a DC table's symbols must
    /// be sizes of at most 15 bits.
    pub(super) fn new(counts: &[u8; 16], values: &[u8], is_dc: bool) -> Result<Self, JpegError> {
        if values.len() > 256 {
            return Err(JpegError::corrupt("Huffman table with more than 256 codes".to_string()));
        }
        if is_dc && values.iter().any(|&s| s > 15) {
            return Err(JpegError::corrupt("DC Huffman table with a size above 15".to_string()));
        }
        let mut lookup = Box::new([0u16; 1 << LOOKUP_BITS]);
        let mut maxcode = [-1i32; 18];
        let mut valoffset = [0i32; 17];
        let mut code = 0u32;
        let mut k = 0usize;
        for len in 1..=16u32 {
            let count = counts[len as usize - 1] as usize;
            valoffset[len as usize] = k as i32 - code as i32;
            for _ in 0..count {
                // The codes of a length must fit in it, and none may be all ones.
                if code + 1 >= 1 << len {
                    return Err(JpegError::corrupt("bad Huffman table (codes overflow)".to_string()));
                }
                if len <= LOOKUP_BITS {
                    let shift = LOOKUP_BITS - len;
                    let first = (code << shift) as usize;
                    let entry = (len as u16) << 8 | values[k] as u16;
                    lookup[first..first + (1 << shift)].fill(entry);
                }
                code += 1;
                k += 1;
            }
            if count > 0 {
                maxcode[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        maxcode[17] = i32::MAX;
        let ac_fast = Box::new(std::array::from_fn(|index| {
            let entry = lookup[index];
            let (len, symbol) = ((entry >> 8) as u32, entry as u8);
            let (run, size) = ((symbol >> 4) as i32, (symbol & 15) as u32);
            if is_dc || entry == 0 || size == 0 || len + size > LOOKUP_BITS {
                return 0;
            }
            let bits = (index as u32 >> (LOOKUP_BITS - len - size)) & ((1 << size) - 1);
            extend(bits, size) << 16 | run << 8 | (len + size) as i32
        }));
        Ok(HuffTable { lookup, ac_fast, maxcode, valoffset, values: values.to_vec() })
    }
}

/// The signed value of `n` (1..=15) received bits `v` (JPEG F.2.2.1, EXTEND).
#[inline]
fn extend(v: u32, n: u32) -> i32 {
    let v = v as i32;
    if v < 1 << (n - 1) {
        v - (1 << n) + 1
    } else {
        v
    }
}

/// A reader of entropy-coded data. Past a marker or the end of the data it supplies zero bits,
/// and counts them, so that a scan that used any of them is reported as truncated.
pub(super) struct BitReader<'a> {
    data: &'a [u8],
    /// The next byte to read; stays on the `FF` of a marker once one is reached.
    pos: usize,
    /// Bits not yet used, left-aligned.
    buf: u64,
    bits: u32,
    /// A marker or the end of the data was reached.
    at_end: bool,
    /// Zero bits supplied past the end of the real data.
    padding: u32,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader { data, pos, buf: 0, bits: 0, at_end: false, padding: 0 }
    }

    /// Tops the buffer up to at least 57 bits.
    #[inline]
    fn fill(&mut self) {
        if self.bits < 32 {
            self.refill();
        }
    }

    #[cold]
    fn refill(&mut self) {
        while self.bits <= 56 {
            let byte = self.next_byte();
            self.buf |= (byte as u64) << (56 - self.bits);
            self.bits += 8;
        }
    }

    fn next_byte(&mut self) -> u8 {
        if !self.at_end {
            match self.data.get(self.pos) {
                Some(&b) if b != 0xFF => {
                    self.pos += 1;
                    return b;
                }
                Some(_) => {
                    // `FF`, possibly followed by fill `FF`s: `00` makes it a data byte.
                    let mut p = self.pos + 1;
                    while self.data.get(p) == Some(&0xFF) {
                        p += 1;
                    }
                    if self.data.get(p) == Some(&0) {
                        self.pos = p + 1;
                        return 0xFF;
                    }
                    self.at_end = true;
                }
                None => self.at_end = true,
            }
        }
        self.padding = self.padding.saturating_add(8);
        0
    }

    /// The next `n` (1..=16) bits, not consumed.
    #[inline]
    fn peek(&mut self, n: u32) -> u32 {
        self.fill();
        (self.buf >> (64 - n)) as u32
    }

    #[inline]
    fn consume(&mut self, n: u32) {
        self.buf <<= n;
        self.bits -= n;
    }

    /// The next `n` (0..=16) bits as an unsigned number.
    #[inline]
    pub(super) fn bits(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        let v = self.peek(n);
        self.consume(n);
        v
    }

    /// One bit.
    #[inline]
    pub(super) fn bit(&mut self) -> bool {
        self.bits(1) != 0
    }

    /// `n` (0..=15) bits as a signed number coded as in JPEG F.2.2.1 (EXTEND).
    #[inline]
    pub(super) fn receive_extend(&mut self, n: u32) -> i32 {
        if n == 0 {
            return 0;
        }
        extend(self.bits(n), n)
    }

    /// The next AC coefficient of a sequential block when its code and value fit in the look-up
    /// bits: `(run, value)`; `None` otherwise (nothing consumed).
    #[inline]
    pub(super) fn fast_ac(&mut self, t: &HuffTable) -> Option<(usize, i32)> {
        let look = self.peek(LOOKUP_BITS);
        let entry = t.ac_fast[look as usize];
        if entry == 0 {
            return None;
        }
        self.consume((entry & 0xFF) as u32);
        Some(((entry >> 8 & 15) as usize, entry >> 16))
    }

    /// The next Huffman-coded symbol.
    #[inline]
    pub(super) fn decode(&mut self, t: &HuffTable) -> Result<u8, JpegError> {
        let look = self.peek(16);
        let entry = t.lookup[(look >> (16 - LOOKUP_BITS)) as usize];
        if entry != 0 {
            self.consume((entry >> 8) as u32);
            return Ok(entry as u8);
        }
        for len in LOOKUP_BITS + 1..=16 {
            let code = (look >> (16 - len)) as i32;
            if code <= t.maxcode[len as usize] {
                self.consume(len);
                let index = code + t.valoffset[len as usize];
                return t
                    .values
                    .get(index as usize)
                    .copied()
                    .ok_or_else(|| JpegError::corrupt("bad Huffman code".to_string()));
            }
        }
        Err(JpegError::corrupt("bad Huffman code".to_string()))
    }

    /// Fails when a bit past the end of the real data has been used.
    #[inline]
    pub(super) fn check(&self) -> Result<(), JpegError> {
        if self.padding > self.bits {
            return Err(JpegError::Truncated("entropy-coded data"));
        }
        Ok(())
    }

    /// Ends a restart interval or scan: drops the bits left in the current byte and returns the
    /// position of the next marker, if any.
    pub(super) fn finish(&mut self) -> Result<usize, JpegError> {
        self.check()?;
        self.buf = 0;
        self.bits = 0;
        self.padding = 0;
        self.at_end = false;
        Ok(self.pos)
    }

    /// Reads the restart marker `RST<n>` that must come next and resets the reader after it.
    pub(super) fn restart(&mut self, n: u8) -> Result<(), JpegError> {
        let pos = self.finish()?;
        match super::markers::next_marker(self.data, pos) {
            Some((code, after)) if code == 0xD0 + n => {
                self.pos = after;
                Ok(())
            }
            Some((code, _)) => {
                Err(JpegError::corrupt(format!("expected restart marker RST{n}, found marker 0x{code:02x}")))
            }
            None => Err(JpegError::Truncated("entropy-coded data (missing restart marker)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes: `0` → 5, `10` → 7, `110` → 9.
    fn table() -> HuffTable {
        let mut counts = [0u8; 16];
        counts[..3].copy_from_slice(&[1, 1, 1]);
        HuffTable::new(&counts, &[5, 7, 9], true).unwrap()
    }

    #[test]
    fn decodes_codes_and_unstuffs_ff00() {
        // 0 | 10 | 110 | 0 + pad, then FF 00 (a data byte FF), then EOI.
        let data = [0b0101_1000, 0xFF, 0x00, 0xFF, 0xD9];
        let mut r = BitReader::new(&data, 0);
        let t = table();
        assert_eq!([r.decode(&t).unwrap(), r.decode(&t).unwrap(), r.decode(&t).unwrap()], [5, 7, 9]);
        assert_eq!(r.bits(2), 0);
        assert_eq!(r.bits(8), 0xFF);
        r.check().unwrap();
        // The marker ends the data: the next bits are padding, and using them is an error.
        assert_eq!(r.bits(4), 0);
        assert_eq!(r.check(), Err(JpegError::Truncated("entropy-coded data")));
        assert_eq!(r.finish().unwrap_err(), JpegError::Truncated("entropy-coded data"));
    }

    #[test]
    fn restart_needs_the_expected_marker() {
        let data = [0xAA, 0xFF, 0xD0, 0x55, 0xFF, 0xD2];
        let mut r = BitReader::new(&data, 0);
        assert_eq!(r.bits(8), 0xAA);
        r.restart(0).unwrap();
        assert_eq!(r.bits(8), 0x55);
        assert!(r.restart(1).unwrap_err().to_string().contains("RST1"));
    }

    #[test]
    fn receive_extend_gives_signed_values() {
        let data = [0b0111_1000];
        let mut r = BitReader::new(&data, 0);
        assert_eq!(r.receive_extend(3), -4); // 011
        assert_eq!(r.receive_extend(2), 3); // 11
    }

    #[test]
    fn bad_tables_are_refused() {
        let mut three_of_one_bit = [0u8; 16];
        three_of_one_bit[0] = 3;
        assert!(HuffTable::new(&three_of_one_bit, &[1, 2, 3], false).is_err());
        // Two 1-bit codes would use the all-ones code.
        let mut two = [0u8; 16];
        two[0] = 2;
        assert!(HuffTable::new(&two, &[1, 2], false).is_err());
        let mut one = [0u8; 16];
        one[0] = 1;
        assert!(HuffTable::new(&one, &[16], true).is_err(), "DC size above 15");
        assert!(HuffTable::new(&one, &[16], false).is_ok());
    }

    #[test]
    fn codes_longer_than_the_lookup_decode() {
        // 1-bit code 0 → 1; then 11-bit code 10000000000 → 2.
        let mut counts = [0u8; 16];
        counts[0] = 1;
        counts[10] = 1;
        let t = HuffTable::new(&counts, &[1, 2], false).unwrap();
        let data = [0b0100_0000, 0b0000_0000, 0xFF, 0xD9];
        let mut r = BitReader::new(&data, 0);
        assert_eq!(r.decode(&t).unwrap(), 1);
        assert_eq!(r.decode(&t).unwrap(), 2);
        // 1111...: no code.
        let bad = [0xFF, 0x00, 0xFF, 0x00];
        assert!(BitReader::new(&bad, 0).decode(&t).is_err());
    }
}
