//! Canonical Huffman coding of a stream of small codes (symbols `0..2^bits`, `bits` 1..=8),
//! written from scratch.
//!
//! - Code lengths are optimal under a bound of [`MAX_LEN`] bits (package-merge), so the decoder
//!   needs one table of `2^max_len` entries.
//! - Codes are canonical: symbols sorted by (length, symbol) get consecutive codes, so the
//!   lengths alone describe the code. The stored table is one 4-bit length per symbol
//!   (0 = unused), [`table_len`] bytes.
//! - The bit stream is LSB-first like [`crate::pack`]; each code is written most significant
//!   bit first (as DEFLATE does), so decoding peeks `max_len` bits and looks them up.
use super::error::{bail, Result};

/// Longest code length.
pub const MAX_LEN: u8 = 12;

/// Bytes of the stored length table for `bits`-bit symbols: 4 bits per symbol.
pub fn table_len(bits: u8) -> usize {
    (1usize << bits).div_ceil(2)
}

/// Optimal code lengths for `freqs` with no code longer than `max_len` (package-merge).
/// Unused symbols get length 0; a single used symbol gets length 1.
pub fn code_lengths(freqs: &[u64], max_len: u8) -> Vec<u8> {
    let used: Vec<usize> = (0..freqs.len()).filter(|&s| freqs[s] > 0).collect();
    let mut lens = vec![0u8; freqs.len()];
    match used.len() {
        0 => return lens,
        1 => {
            lens[used[0]] = 1;
            return lens;
        }
        _ => {}
    }
    assert!(used.len() <= 1usize << max_len, "too many symbols for the length bound");
    // Items: (weight, symbols it contains, with multiplicity, as counts per used symbol).
    let mut leaves: Vec<(u64, usize)> = used.iter().enumerate().map(|(i, &s)| (freqs[s], i)).collect();
    leaves.sort();
    let n = used.len();
    let leaf_items: Vec<(u64, Vec<u16>)> = leaves
        .iter()
        .map(|&(w, i)| {
            let mut c = vec![0u16; n];
            c[i] = 1;
            (w, c)
        })
        .collect();
    let mut list = leaf_items.clone();
    for _ in 1..max_len {
        let packages: Vec<(u64, Vec<u16>)> = list
            .chunks_exact(2)
            .map(|p| (p[0].0 + p[1].0, p[0].1.iter().zip(&p[1].1).map(|(a, b)| a + b).collect()))
            .collect();
        let mut merged = Vec::with_capacity(packages.len() + leaf_items.len());
        let (mut a, mut b) = (leaf_items.iter().peekable(), packages.into_iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 <= y.0 => merged.push(a.next().cloned().unwrap_or_default()),
                (Some(_), None) => merged.push(a.next().cloned().unwrap_or_default()),
                (_, Some(_)) => merged.push(b.next().unwrap_or_default()),
                (None, None) => break,
            }
        }
        list = merged;
    }
    for (_, counts) in list.iter().take(2 * n - 2) {
        for (i, &c) in counts.iter().enumerate() {
            lens[used[i]] += c as u8;
        }
    }
    lens
}

/// Canonical codes (MSB-first values) of `lens`; 0 for unused symbols.
fn canonical_codes(lens: &[u8]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..lens.len()).filter(|&s| lens[s] > 0).collect();
    order.sort_by_key(|&s| (lens[s], s));
    let mut codes = vec![0u32; lens.len()];
    let (mut code, mut prev) = (0u32, 0u8);
    for (k, &s) in order.iter().enumerate() {
        if k > 0 {
            code += 1;
        }
        code <<= lens[s] - prev;
        prev = lens[s];
        codes[s] = code;
    }
    codes
}

/// Checks that `lens` describe a prefix code (Kraft sum at most 1, lengths within the bound).
fn check_lengths(lens: &[u8]) -> Result<()> {
    let mut kraft = 0u64;
    for (s, &l) in lens.iter().enumerate() {
        if l > MAX_LEN {
            bail!("Huffman length {l} of symbol {s} exceeds {MAX_LEN}");
        }
        if l > 0 {
            kraft += 1u64 << (MAX_LEN - l);
        }
    }
    if kraft > 1u64 << MAX_LEN {
        bail!("Huffman code lengths do not form a prefix code");
    }
    Ok(())
}

fn reverse(code: u32, len: u8) -> u32 {
    code.reverse_bits() >> (32 - len as u32)
}

/// Huffman-codes `codes` (each `< 2^bits`): returns the length per symbol and the bit stream.
pub fn encode(codes: &[u8], bits: u8) -> (Vec<u8>, Vec<u8>) {
    let mut freqs = vec![0u64; 1 << bits];
    codes.iter().for_each(|&c| freqs[c as usize] += 1);
    let lens = code_lengths(&freqs, MAX_LEN);
    let canon = canonical_codes(&lens);
    let rev: Vec<u32> =
        (0..lens.len()).map(|s| if lens[s] > 0 { reverse(canon[s], lens[s]) } else { 0 }).collect();
    let total: u64 = codes.iter().map(|&c| lens[c as usize] as u64).sum();
    let mut out = Vec::with_capacity(total.div_ceil(8) as usize);
    let (mut acc, mut filled) = (0u64, 0u32);
    for &c in codes {
        acc |= (rev[c as usize] as u64) << filled;
        filled += lens[c as usize] as u32;
        while filled >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            filled -= 8;
        }
    }
    if filled > 0 {
        out.push(acc as u8);
    }
    (lens, out)
}

/// Exact byte length of the stream [`encode`] writes for `codes` with `lens`.
pub fn stream_len(freqs: &[u64], lens: &[u8]) -> u64 {
    freqs.iter().zip(lens).map(|(&f, &l)| f * l as u64).sum::<u64>().div_ceil(8)
}

/// Decodes `n` symbols from `data` coded with `lens`. Errors on an invalid code table, a bit
/// pattern that is no code, a stream that ends early or one with bytes left over.
pub fn decode(lens: &[u8], data: &[u8], n: usize) -> Result<Vec<u8>> {
    check_lengths(lens)?;
    let max = lens.iter().copied().max().unwrap_or(0);
    if n == 0 {
        if !data.is_empty() {
            bail!("an empty Huffman stream has {} bytes", data.len());
        }
        return Ok(Vec::new());
    }
    if max == 0 {
        bail!("the Huffman table has no symbol but the stream has {n}");
    }
    // Every code is at least one bit: more symbols than bits cannot be right (checked before
    // allocating the output).
    if n as u64 > data.len() as u64 * 8 {
        bail!("{n} Huffman codes cannot fit in {} bytes", data.len());
    }
    // table[peek] = symbol << 8 | length; 0 marks a bit pattern that starts no code.
    let mut table = vec![0u16; 1 << max];
    let canon = canonical_codes(lens);
    for (s, &l) in lens.iter().enumerate() {
        if l == 0 {
            continue;
        }
        let r = reverse(canon[s], l) as usize;
        for fill in 0..1usize << (max - l) {
            table[r | fill << l] = (s as u16) << 8 | l as u16;
        }
    }
    let mask = (1u64 << max) - 1;
    let total_bits = data.len() as u64 * 8;
    let mut out = Vec::with_capacity(n);
    let (mut acc, mut filled, mut next, mut used) = (0u64, 0u32, 0usize, 0u64);
    for _ in 0..n {
        while filled <= 56 && next < data.len() {
            acc |= (data[next] as u64) << filled;
            next += 1;
            filled += 8;
        }
        let e = table[(acc & mask) as usize];
        if e == 0 {
            bail!("invalid Huffman code at bit {used}");
        }
        let l = (e & 0xff) as u32;
        used += l as u64;
        if used > total_bits {
            bail!("the Huffman stream ends inside symbol {} of {n}", out.len());
        }
        out.push((e >> 8) as u8);
        acc >>= l;
        filled = filled.saturating_sub(l);
    }
    if used.div_ceil(8) != data.len() as u64 {
        bail!("the Huffman stream has {} bytes, its {n} codes use {}", data.len(), used.div_ceil(8));
    }
    Ok(out)
}

/// Packs code lengths at 4 bits each (the stored table).
pub fn pack_lengths(lens: &[u8]) -> Vec<u8> {
    lens.chunks(2).map(|p| p[0] | p.get(1).copied().unwrap_or(0) << 4).collect()
}

/// The `count` lengths of a stored table.
pub fn unpack_lengths(table: &[u8], count: usize) -> Vec<u8> {
    (0..count).map(|s| (table[s / 2] >> (4 * (s % 2))) & 0xf).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_bounded_and_optimal_on_a_known_case() {
        // Classic example: frequencies 1,1,2,4,8 give lengths 4,4,3,2,1 unbounded.
        assert_eq!(code_lengths(&[1, 1, 2, 4, 8], 12), vec![4, 4, 3, 2, 1]);
        // Bounded to 3 bits: Kraft-feasible and no code longer than 3.
        let l = code_lengths(&[1, 1, 2, 4, 8], 3);
        assert!(l.iter().all(|&x| (1..=3).contains(&x)), "{l:?}");
        check_lengths(&l).unwrap();
        // Fibonacci frequencies would need 40+ bits unbounded.
        let fib: Vec<u64> = (0..60)
            .scan((1u64, 1u64), |s, _| {
                let r = s.0;
                *s = (s.1, s.0 + s.1);
                Some(r)
            })
            .collect();
        let l = code_lengths(&fib, MAX_LEN);
        assert!(l.iter().all(|&x| (1..=MAX_LEN).contains(&x)));
        check_lengths(&l).unwrap();
    }

    #[test]
    fn roundtrip_and_errors() {
        let codes: Vec<u8> = (0..1000u32).map(|i| ((i * i) % 7) as u8).collect();
        let (lens, data) = encode(&codes, 3);
        assert_eq!(decode(&lens, &data, codes.len()).unwrap(), codes);
        assert!(decode(&lens, &data[..data.len() - 1], codes.len()).is_err());
        assert!(decode(&lens, &data, codes.len() + 50).is_err());
        let mut extra = data.clone();
        extra.push(0);
        assert!(decode(&lens, &extra, codes.len()).is_err());
        // A single symbol: one bit each.
        let (lens, data) = encode(&[5; 9], 3);
        assert_eq!(data.len(), 2);
        assert_eq!(decode(&lens, &data, 9).unwrap(), vec![5; 9]);
        // Over-full lengths are rejected.
        assert!(decode(&[1, 1, 1], &[0], 1).is_err());
        assert_eq!(unpack_lengths(&pack_lengths(&[1, 2, 3]), 3), vec![1, 2, 3]);
    }
}
