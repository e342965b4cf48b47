//! A minimal, bounds-checked protobuf decoder for the ONNX messages the importer reads
//! (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto).
//!
//! Every length is checked against the bytes that remain, so truncated or garbage input is an
//! error, never a panic; nothing is allocated beyond what the input itself holds (tensor
//! payloads stay borrowed slices of the input).
use crate::error::{IoError, Result};

fn err(msg: impl Into<String>) -> IoError {
    IoError::Format(format!("invalid ONNX protobuf: {}", msg.into()))
}

/// One decoded field value.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Iterates over the fields of one message.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(err(format!("{} truncated inside a varint", self.what)));
            };
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(err(format!("{}: varint longer than 10 bytes", self.what)))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| err(format!("{} truncated: field of {n} bytes past the end", self.what)))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next (field number, value), or `None` at the end of the message.
    fn next(&mut self) -> Result<Option<(u64, Value<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 {
            return Err(err(format!("{}: field number 0", self.what)));
        }
        let v = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                Value::Fixed64(u64::from_le_bytes(b.try_into().expect("8 bytes")))
            }
            2 => {
                let n = self.varint()?;
                let n =
                    usize::try_from(n).map_err(|_| err(format!("{}: length {n} too large", self.what)))?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes(b.try_into().expect("4 bytes")))
            }
            w => return Err(err(format!("{}: unsupported wire type {w}", self.what))),
        };
        Ok(Some((field, v)))
    }
}

fn as_int(v: Value, what: &str) -> Result<i64> {
    match v {
        Value::Varint(x) => Ok(x as i64),
        _ => Err(err(format!("{what}: expected an integer"))),
    }
}

fn as_bytes<'a>(v: Value<'a>, what: &str) -> Result<&'a [u8]> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(err(format!("{what}: expected a length-delimited field"))),
    }
}

fn as_string(v: Value, what: &str) -> Result<String> {
    let b = as_bytes(v, what)?;
    String::from_utf8(b.to_vec()).map_err(|_| err(format!("{what}: string is not UTF-8")))
}

fn as_f32(v: Value, what: &str) -> Result<f32> {
    match v {
        Value::Fixed32(x) => Ok(f32::from_bits(x)),
        _ => Err(err(format!("{what}: expected a float"))),
    }
}

/// Appends a repeated varint field (packed or not).
fn push_ints(out: &mut Vec<i64>, v: Value, what: &'static str) -> Result<()> {
    match v {
        Value::Varint(x) => out.push(x as i64),
        Value::Bytes(b) => {
            let mut r = Reader::new(b, what);
            while r.pos < b.len() {
                out.push(r.varint()? as i64);
            }
        }
        _ => return Err(err(format!("{what}: expected integers"))),
    }
    Ok(())
}

/// Appends a repeated float field (packed or not).
fn push_floats(out: &mut Vec<f32>, v: Value, what: &str) -> Result<()> {
    match v {
        Value::Fixed32(x) => out.push(f32::from_bits(x)),
        Value::Bytes(b) => {
            if b.len() % 4 != 0 {
                return Err(err(format!("{what}: packed floats of {} bytes", b.len())));
            }
            out.extend(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        }
        _ => return Err(err(format!("{what}: expected floats"))),
    }
    Ok(())
}

/// Appends a repeated double field (packed or not).
fn push_doubles(out: &mut Vec<f64>, v: Value, what: &str) -> Result<()> {
    match v {
        Value::Fixed64(x) => out.push(f64::from_bits(x)),
        Value::Bytes(b) => {
            if b.len() % 8 != 0 {
                return Err(err(format!("{what}: packed doubles of {} bytes", b.len())));
            }
            out.extend(b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))));
        }
        _ => return Err(err(format!("{what}: expected doubles"))),
    }
    Ok(())
}

/// ModelProto.
#[derive(Debug, Default)]
pub struct ModelProto<'a> {
    pub ir_version: i64,
    /// (domain, version) pairs.
    pub opset_import: Vec<(String, i64)>,
    pub producer_name: String,
    pub graph: Option<GraphProto<'a>>,
    pub metadata_props: Vec<(String, String)>,
}

/// GraphProto.
#[derive(Debug, Default)]
pub struct GraphProto<'a> {
    pub name: String,
    pub nodes: Vec<NodeProto<'a>>,
    pub initializers: Vec<TensorProto<'a>>,
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
}

/// NodeProto.
#[derive(Debug, Default)]
pub struct NodeProto<'a> {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub name: String,
    pub op_type: String,
    pub domain: String,
    pub attributes: Vec<AttributeProto<'a>>,
}

/// AttributeProto (graph-valued attributes are skipped).
#[derive(Debug, Default)]
pub struct AttributeProto<'a> {
    pub name: String,
    pub kind: i64,
    pub f: Option<f32>,
    pub i: Option<i64>,
    pub s: Option<&'a [u8]>,
    pub t: Option<TensorProto<'a>>,
    pub floats: Vec<f32>,
    pub ints: Vec<i64>,
    pub strings: Vec<&'a [u8]>,
}

/// TensorProto; the payload stays a view into the file.
#[derive(Debug, Default)]
pub struct TensorProto<'a> {
    pub name: String,
    pub dims: Vec<i64>,
    pub data_type: i64,
    pub raw_data: Option<&'a [u8]>,
    pub float_data: Vec<f32>,
    pub int32_data: Vec<i64>,
    pub int64_data: Vec<i64>,
    pub double_data: Vec<f64>,
    pub uint64_data: Vec<i64>,
    /// 1 = EXTERNAL (data in another file; unsupported).
    pub data_location: i64,
    pub has_external_data: bool,
}

/// One dimension of a ValueInfo shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    Value(i64),
    Param(String),
    Unknown,
}

/// ValueInfoProto, restricted to tensor types.
#[derive(Debug, Default, Clone)]
pub struct ValueInfo {
    pub name: String,
    pub elem_type: i64,
    /// `None` when the type has no shape.
    pub shape: Option<Vec<Dim>>,
}

/// Decodes a ModelProto.
pub fn model(buf: &[u8]) -> Result<ModelProto<'_>> {
    let mut m = ModelProto::default();
    let mut r = Reader::new(buf, "ModelProto");
    while let Some((f, v)) = r.next()? {
        match f {
            1 => m.ir_version = as_int(v, "ModelProto.ir_version")?,
            2 => m.producer_name = as_string(v, "ModelProto.producer_name")?,
            7 => m.graph = Some(graph(as_bytes(v, "ModelProto.graph")?)?),
            8 => {
                let b = as_bytes(v, "ModelProto.opset_import")?;
                let mut r = Reader::new(b, "OperatorSetIdProto");
                let (mut domain, mut version) = (String::new(), 0);
                while let Some((f, v)) = r.next()? {
                    match f {
                        1 => domain = as_string(v, "OperatorSetIdProto.domain")?,
                        2 => version = as_int(v, "OperatorSetIdProto.version")?,
                        _ => {}
                    }
                }
                m.opset_import.push((domain, version));
            }
            14 => {
                let b = as_bytes(v, "ModelProto.metadata_props")?;
                let mut r = Reader::new(b, "StringStringEntryProto");
                let (mut key, mut value) = (String::new(), String::new());
                while let Some((f, v)) = r.next()? {
                    match f {
                        1 => key = as_string(v, "metadata key")?,
                        2 => value = as_string(v, "metadata value")?,
                        _ => {}
                    }
                }
                m.metadata_props.push((key, value));
            }
            _ => {}
        }
    }
    Ok(m)
}

fn graph(buf: &[u8]) -> Result<GraphProto<'_>> {
    let mut g = GraphProto::default();
    let mut r = Reader::new(buf, "GraphProto");
    while let Some((f, v)) = r.next()? {
        match f {
            1 => g.nodes.push(node(as_bytes(v, "GraphProto.node")?)?),
            2 => g.name = as_string(v, "GraphProto.name")?,
            5 => g.initializers.push(tensor(as_bytes(v, "GraphProto.initializer")?)?),
            11 => g.inputs.push(value_info(as_bytes(v, "GraphProto.input")?)?),
            12 => g.outputs.push(value_info(as_bytes(v, "GraphProto.output")?)?),
            15 => return Err(err("sparse initializers are not supported")),
            _ => {}
        }
    }
    Ok(g)
}

fn node(buf: &[u8]) -> Result<NodeProto<'_>> {
    let mut n = NodeProto::default();
    let mut r = Reader::new(buf, "NodeProto");
    while let Some((f, v)) = r.next()? {
        match f {
            1 => n.inputs.push(as_string(v, "NodeProto.input")?),
            2 => n.outputs.push(as_string(v, "NodeProto.output")?),
            3 => n.name = as_string(v, "NodeProto.name")?,
            4 => n.op_type = as_string(v, "NodeProto.op_type")?,
            5 => n.attributes.push(attribute(as_bytes(v, "NodeProto.attribute")?)?),
            7 => n.domain = as_string(v, "NodeProto.domain")?,
            _ => {}
        }
    }
    Ok(n)
}

fn attribute(buf: &[u8]) -> Result<AttributeProto<'_>> {
    let mut a = AttributeProto::default();
    let mut r = Reader::new(buf, "AttributeProto");
    while let Some((f, v)) = r.next()? {
        match f {
            1 => a.name = as_string(v, "AttributeProto.name")?,
            2 => a.f = Some(as_f32(v, "AttributeProto.f")?),
            3 => a.i = Some(as_int(v, "AttributeProto.i")?),
            4 => a.s = Some(as_bytes(v, "AttributeProto.s")?),
            5 => a.t = Some(tensor(as_bytes(v, "AttributeProto.t")?)?),
            7 => push_floats(&mut a.floats, v, "AttributeProto.floats")?,
            8 => push_ints(&mut a.ints, v, "AttributeProto.ints")?,
            9 => a.strings.push(as_bytes(v, "AttributeProto.strings")?),
            20 => a.kind = as_int(v, "AttributeProto.type")?,
            _ => {}
        }
    }
    Ok(a)
}

fn tensor(buf: &[u8]) -> Result<TensorProto<'_>> {
    let mut t = TensorProto::default();
    let mut r = Reader::new(buf, "TensorProto");
    while let Some((f, v)) = r.next()? {
        match f {
            1 => push_ints(&mut t.dims, v, "TensorProto.dims")?,
            2 => t.data_type = as_int(v, "TensorProto.data_type")?,
            3 => return Err(err("segmented tensors are not supported")),
            4 => push_floats(&mut t.float_data, v, "TensorProto.float_data")?,
            5 => push_ints(&mut t.int32_data, v, "TensorProto.int32_data")?,
            7 => push_ints(&mut t.int64_data, v, "TensorProto.int64_data")?,
            8 => t.name = as_string(v, "TensorProto.name")?,
            9 => t.raw_data = Some(as_bytes(v, "TensorProto.raw_data")?),
            10 => push_doubles(&mut t.double_data, v, "TensorProto.double_data")?,
            11 => push_ints(&mut t.uint64_data, v, "TensorProto.uint64_data")?,
            13 => t.has_external_data = true,
            14 => t.data_location = as_int(v, "TensorProto.data_location")?,
            _ => {}
        }
    }
    Ok(t)
}

fn value_info(buf: &[u8]) -> Result<ValueInfo> {
    let mut vi = ValueInfo::default();
    let mut r = Reader::new(buf, "ValueInfoProto");
    while let Some((f, v)) = r.next()? {
        match f {
            1 => vi.name = as_string(v, "ValueInfoProto.name")?,
            2 => {
                // TypeProto: tensor_type = 1.
                let mut r = Reader::new(as_bytes(v, "ValueInfoProto.type")?, "TypeProto");
                while let Some((f, v)) = r.next()? {
                    if f != 1 {
                        continue;
                    }
                    let mut r = Reader::new(as_bytes(v, "TypeProto.tensor_type")?, "TypeProto.Tensor");
                    while let Some((f, v)) = r.next()? {
                        match f {
                            1 => vi.elem_type = as_int(v, "TypeProto.Tensor.elem_type")?,
                            2 => {
                                let mut dims = Vec::new();
                                let mut r = Reader::new(as_bytes(v, "TensorShapeProto")?, "TensorShapeProto");
                                while let Some((f, v)) = r.next()? {
                                    if f != 1 {
                                        continue;
                                    }
                                    let mut d = Dim::Unknown;
                                    let mut r = Reader::new(as_bytes(v, "Dimension")?, "Dimension");
                                    while let Some((f, v)) = r.next()? {
                                        match f {
                                            1 => d = Dim::Value(as_int(v, "Dimension.dim_value")?),
                                            2 => d = Dim::Param(as_string(v, "Dimension.dim_param")?),
                                            _ => {}
                                        }
                                    }
                                    dims.push(d);
                                }
                                vi.shape = Some(dims);
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(vi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::Message;

    #[test]
    fn decodes_what_the_encoder_writes() {
        let mut t = Message::new();
        t.int(1, 2).int(1, 3).int(2, 1).string(8, "w");
        t.bytes(9, &[0u8; 24]);
        let mut n = Message::new();
        n.string(1, "x").string(1, "w").string(2, "y").string(3, "fc").string(4, "MatMul");
        let mut g = Message::new();
        g.message(1, &n).message(5, &t);
        let mut m = Message::new();
        m.int(1, 8).message(7, &g);
        let b = m.into_bytes();
        let m = model(&b).unwrap();
        let g = m.graph.unwrap();
        assert_eq!(g.nodes[0].op_type, "MatMul");
        assert_eq!(g.nodes[0].inputs, ["x", "w"]);
        assert_eq!(g.initializers[0].dims, [2, 3]);
        assert_eq!(g.initializers[0].raw_data.unwrap().len(), 24);
    }

    #[test]
    fn truncation_is_an_error() {
        let mut m = Message::new();
        m.int(1, 8).string(2, "producer");
        let b = m.into_bytes();
        for n in (1..b.len()).filter(|&n| n != 2) {
            assert!(model(&b[..n]).is_err(), "prefix {n}");
        }
        // A length claiming far more bytes than exist.
        assert!(model(&[0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
