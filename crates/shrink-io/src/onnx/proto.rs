//! A minimal protobuf encoder: enough of the wire format for ONNX's messages.

/// A message under construction; fields are appended in call order.
#[derive(Default, Debug, Clone)]
pub struct Message {
    buf: Vec<u8>,
}

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

impl Message {
    /// An empty message.
    pub fn new() -> Self {
        Self::default()
    }

    fn tag(&mut self, field: u32, wire: u8) {
        varint(&mut self.buf, ((field as u64) << 3) | wire as u64);
    }

    /// A varint field (int32/int64/enum; negative values as two's complement, like protobuf).
    pub fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.tag(field, 0);
        varint(&mut self.buf, v as u64);
        self
    }

    /// A 32-bit float field.
    pub fn float(&mut self, field: u32, v: f32) -> &mut Self {
        self.tag(field, 5);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A bytes field.
    pub fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        self.tag(field, 2);
        varint(&mut self.buf, v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    /// A string field.
    pub fn string(&mut self, field: u32, v: &str) -> &mut Self {
        self.bytes(field, v.as_bytes())
    }

    /// An embedded message field.
    pub fn message(&mut self, field: u32, m: &Message) -> &mut Self {
        self.bytes(field, &m.buf)
    }

    /// The encoded bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_protobuf() {
        let mut m = Message::new();
        m.int(1, 150).string(2, "testing").int(3, -1);
        let b = m.into_bytes();
        // The protobuf documentation's examples: field 1 = 150 → 08 96 01; "testing" → 12 07 ...
        assert_eq!(&b[..3], &[0x08, 0x96, 0x01]);
        assert_eq!(&b[3..5], &[0x12, 0x07]);
        assert_eq!(&b[5..12], b"testing");
        // -1 as int64: ten bytes.
        assert_eq!(b.len(), 12 + 1 + 10);
    }
}
