//! Writing and reading the bytes of a deploy file (layout in the [module docs](super)).
use super::compact::{self, ALIGN_COMPACT, VERSION_COMPACT};
use super::encoding::{Encoded, Encoding};
use super::error::{bail, DeployError, Result};
use super::model::{placeholder, DeployMeta, DeployModel};
use super::wire::Cursor;
use super::{ALIGN, MAGIC, VERSION};
use serde::{Deserialize, Serialize};
use shrink_graph::{DType, Fact, Graph, Op, Tensor, ValueDef};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;

/// Bytes before the header: magic, version, header length.
pub const PREAMBLE: usize = 8 + 4 + 8;
/// Bytes of the trailing checksum.
pub const CHECKSUM: usize = 4;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    graph: GraphHeader,
    meta: DeployMeta,
    tensors: Vec<TableEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphHeader {
    values: Vec<ValueHeader>,
    nodes: Vec<NodeHeader>,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueHeader {
    name: String,
    fact: Fact,
    def: DefHeader,
}

/// Where a value comes from; a constant's data is the tensor of the same name.
#[derive(Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum DefHeader {
    Input,
    Const,
    Node { node: usize, slot: usize },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeHeader {
    name: String,
    op: Op,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
}

/// One row of the tensor table.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableEntry {
    name: String,
    dtype: DType,
    shape: Vec<usize>,
    encoding: String,
    /// From the start of the payload area.
    offset: u64,
    length: u64,
}

fn align(n: u64, to: u64) -> u64 {
    n.div_ceil(to) * to
}

/// How a deploy file is laid out: both forms hold the same model and both read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Form {
    /// Version 1: plain JSON header, payloads at multiples of [`ALIGN`] bytes.
    #[default]
    Plain,
    /// Version 2 ([`compact`]): deflated JSON header, payloads packed back to back.
    Compact,
}

impl Form {
    /// The format version written for this form.
    pub fn version(self) -> u32 {
        match self {
            Form::Plain => VERSION,
            Form::Compact => VERSION_COMPACT,
        }
    }

    /// Payload alignment of this form.
    pub fn align(self) -> u64 {
        match self {
            Form::Plain => ALIGN,
            Form::Compact => ALIGN_COMPACT,
        }
    }

    /// The form a stored version number means (`None`: not one this build reads).
    pub fn of_version(v: u32) -> Option<Form> {
        match v {
            VERSION => Some(Form::Plain),
            VERSION_COMPACT => Some(Form::Compact),
            _ => None,
        }
    }
}

/// The serialized header and where everything goes.
pub(crate) struct Layout {
    pub header: Vec<u8>,
    /// Start of the payload area (absolute).
    pub area: u64,
    /// (name, offset in the area, length) in table order.
    pub payloads: Vec<(String, u64, u64)>,
    /// File length.
    pub total: u64,
}

/// Checks the structure of a graph header: ids in range, nodes in order with their outputs
/// right after the values they read (the order [`Graph::add_node`] creates), the input list.
fn check_structure(g: &GraphHeader) -> Result<()> {
    let nv = g.values.len();
    let mut next_node = 0usize;
    let mut i = 0usize;
    while i < nv {
        let v = &g.values[i];
        if let DefHeader::Node { node, slot } = v.def {
            let Some(n) = g.nodes.get(node) else { bail!("value `{}`: node {node} does not exist", v.name) };
            if node != next_node || slot != 0 {
                bail!("value `{}`: output {slot} of node `{}` is out of order", v.name, n.name);
            }
            let k = n.outputs.len();
            if k == 0 {
                bail!("node `{}` has no output", n.name);
            }
            for (j, &o) in n.outputs.iter().enumerate() {
                let ok =
                    o == i + j && g.values.get(o).is_some_and(|w| w.def == DefHeader::Node { node, slot: j });
                if !ok {
                    bail!("node `{}`: output {j} is not value {}", n.name, i + j);
                }
            }
            if let Some(&bad) = n.inputs.iter().find(|&&x| x >= i) {
                bail!("node `{}` reads value {bad}, which is not defined before it", n.name);
            }
            next_node += 1;
            i += k;
            continue;
        }
        i += 1;
    }
    if next_node != g.nodes.len() {
        bail!("node `{}` has no output value", g.nodes[next_node].name);
    }
    let declared: Vec<usize> = (0..nv).filter(|&i| g.values[i].def == DefHeader::Input).collect();
    let mut listed = g.inputs.clone();
    listed.sort_unstable();
    if listed != declared {
        bail!("the input list {:?} does not match the input values {declared:?}", g.inputs);
    }
    if let Some(&o) = g.outputs.iter().find(|&&o| o >= nv) {
        bail!("graph output {o} does not exist ({nv} values)");
    }
    Ok(())
}

fn graph_header(g: &Graph) -> GraphHeader {
    GraphHeader {
        values: g
            .values
            .iter()
            .map(|v| ValueHeader {
                name: v.name.clone(),
                fact: v.fact.clone(),
                def: match v.def {
                    ValueDef::Input => DefHeader::Input,
                    ValueDef::Const(_) => DefHeader::Const,
                    ValueDef::Node { node, slot } => DefHeader::Node { node, slot },
                },
            })
            .collect(),
        nodes: g
            .nodes
            .iter()
            .map(|n| NodeHeader {
                name: n.name.clone(),
                op: n.op.clone(),
                inputs: n.inputs.clone(),
                outputs: n.outputs.clone(),
            })
            .collect(),
        inputs: g.inputs.clone(),
        outputs: g.outputs.clone(),
    }
}

/// Checks that every operator's attributes survive JSON (a non-finite number would be
/// written as `null` and not read back) and that the metadata's numbers are finite.
fn check_numbers(nodes: &[NodeHeader], meta: &DeployMeta) -> Result<()> {
    for n in nodes {
        let same = serde_json::to_value(&n.op).ok().and_then(|v| serde_json::from_value::<Op>(v).ok());
        if same.as_ref() != Some(&n.op) {
            bail!("node `{}`: an attribute is not a finite number", n.name);
        }
    }
    if meta.mean.iter().chain(&meta.std).any(|x| !x.is_finite()) {
        bail!("meta: mean and std must be finite");
    }
    Ok(())
}

/// Checks that the constants of the graph and the tensors agree (names, dtypes, shapes).
fn check_tensors(m: &DeployModel) -> Result<()> {
    let mut consts = HashSet::new();
    for v in &m.graph.values {
        if !matches!(v.def, ValueDef::Const(_)) {
            continue;
        }
        consts.insert(v.name.as_str());
        let Some(t) = m.tensors.get(&v.name) else { bail!("constant `{}` has no tensor", v.name) };
        if Fact::new(t.dtype(), &t.shape) != v.fact {
            bail!("tensor `{}`: {:?}{:?} but the graph says {}", v.name, t.dtype(), t.shape, v.fact);
        }
    }
    if let Some(name) = m.tensors.keys().find(|k| !consts.contains(k.as_str())) {
        bail!("tensor `{name}` is not a constant of the graph");
    }
    Ok(())
}

impl DeployModel {
    /// Where everything goes in a file of the given form (checks the model first).
    pub(crate) fn layout_as(&self, form: Form) -> Result<Layout> {
        let to = form.align();
        check_tensors(self)?;
        let graph = graph_header(&self.graph);
        check_structure(&graph).map_err(|e| e.context("graph"))?;
        check_numbers(&graph.nodes, &self.meta)?;
        let mut offset = 0u64;
        let mut payloads = Vec::new();
        let mut tensors = Vec::new();
        for (name, t) in &self.tensors {
            let len = t.encoded_size() as u64;
            tensors.push(TableEntry {
                name: name.clone(),
                dtype: t.dtype(),
                shape: t.shape.clone(),
                encoding: t.encoding.kind().to_string(),
                offset,
                length: len,
            });
            payloads.push((name.clone(), offset, len));
            offset = align(offset + len, to);
        }
        let end = payloads.last().map(|p| p.1 + p.2).unwrap_or(0);
        let mut header = serde_json::to_vec(&Header { graph, meta: self.meta.clone(), tensors })
            .map_err(|e| DeployError::invalid(format!("header: {e}")))?;
        if form == Form::Compact {
            header = compact::deflate(&header);
        }
        let area = align((PREAMBLE + header.len()) as u64, to);
        Ok(Layout { header, area, payloads, total: area + end + CHECKSUM as u64 })
    }

    /// Writes the plain (version 1) file to `w` (streamed: one tensor's payload in memory at
    /// a time).
    pub fn write_to<W: Write>(&self, w: W) -> Result<()> {
        self.write_as(w, Form::Plain)
    }

    /// Writes the file in the given form to `w` (streamed like [`Self::write_to`]).
    pub fn write_as<W: Write>(&self, w: W, form: Form) -> Result<()> {
        let layout = self.layout_as(form)?;
        let mut w = Hashing { inner: w, crc: crc32fast::Hasher::new(), pos: 0 };
        let io = |e: std::io::Error| DeployError::invalid(format!("write: {e}"));
        w.write_all(MAGIC).map_err(io)?;
        w.write_all(&form.version().to_le_bytes()).map_err(io)?;
        w.write_all(&(layout.header.len() as u64).to_le_bytes()).map_err(io)?;
        w.write_all(&layout.header).map_err(io)?;
        let mut buf = Vec::new();
        for (name, offset, len) in &layout.payloads {
            w.pad_to(layout.area + offset).map_err(io)?;
            buf.clear();
            self.tensors[name].encoding.write(&mut buf);
            debug_assert_eq!(buf.len() as u64, *len, "encoded_size of `{name}`");
            w.write_all(&buf).map_err(io)?;
        }
        w.pad_to(layout.total - CHECKSUM as u64).map_err(io)?;
        let crc = w.crc.clone().finalize();
        w.inner.write_all(&crc.to_le_bytes()).map_err(io)?;
        Ok(())
    }

    /// The plain (version 1) file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.to_bytes_as(Form::Plain)
    }

    /// The file's bytes in the given form.
    pub fn to_bytes_as(&self, form: Form) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_as(&mut out, form)?;
        Ok(out)
    }

    /// Reads a deploy file of either form: magic, version and checksum first, then every length and offset
    /// against the bytes there are before anything is allocated, then every tensor decodes and
    /// the graph is rebuilt (shape inference must agree with the stored facts).
    pub fn read(bytes: &[u8]) -> Result<DeployModel> {
        let len = bytes.len();
        if len < MAGIC.len() {
            return Err(DeployError::TooShort { len, min: PREAMBLE + CHECKSUM });
        }
        if &bytes[..8] != MAGIC {
            return Err(DeployError::Magic);
        }
        if len < PREAMBLE + CHECKSUM {
            return Err(DeployError::TooShort { len, min: PREAMBLE + CHECKSUM });
        }
        let mut c = Cursor::new(&bytes[8..len - CHECKSUM]);
        let version = c.u32("version")?;
        if version == 0 {
            return Err(DeployError::BadVersion(version));
        }
        let Some(form) = Form::of_version(version) else {
            return Err(DeployError::Newer { found: version, supported: VERSION_COMPACT });
        };
        let tail = &bytes[len - CHECKSUM..];
        let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let computed = crc32fast::hash(&bytes[..len - CHECKSUM]);
        if stored != computed {
            return Err(DeployError::Checksum { stored, computed });
        }
        let hlen = c.u64("header length")?;
        let stored = c.take(hlen, "header").map_err(|e| e.context("header"))?;
        let inflated;
        let header = match form {
            Form::Plain => stored,
            Form::Compact => {
                inflated = compact::inflate(stored)?;
                &inflated[..]
            }
        };
        let header: Header =
            serde_json::from_slice(header).map_err(|e| DeployError::invalid(format!("header: {e}")))?;
        check_numbers(&header.graph.nodes, &header.meta).map_err(|e| e.context("header"))?;
        let area = align(PREAMBLE as u64 + hlen, form.align());
        let body = (len - CHECKSUM) as u64;
        if area > body {
            bail!("header: the payload area would start at byte {area}, past the file's {len} bytes");
        }
        let tensors =
            read_tensors(&header.tensors, &bytes[area as usize..body as usize], area, len, form.align())?;
        let graph = rebuild(&header.graph, &tensors).map_err(|e| e.context("graph"))?;
        let model = DeployModel { graph, tensors, meta: header.meta };
        check_tensors(&model)?;
        Ok(model)
    }
}

/// Decodes the tensor table's payloads from the payload area `data` (which starts at byte
/// `area` of a `file_len`-byte file).
fn read_tensors(
    table: &[TableEntry],
    data: &[u8],
    area: u64,
    file_len: usize,
    to: u64,
) -> Result<BTreeMap<String, Encoded>> {
    let mut out = BTreeMap::new();
    let mut end = 0u64;
    for e in table {
        let what = format!("tensor `{}`", e.name);
        let fail = |m: String| DeployError::invalid(format!("{what}: {m}"));
        let (start, stop) =
            (area.saturating_add(e.offset), area.saturating_add(e.offset).saturating_add(e.length));
        if e.offset.checked_add(e.length).is_none_or(|s| s > data.len() as u64) {
            return Err(fail(format!("payload [{start}, {stop}) ends past the file's {file_len} bytes")));
        }
        if e.offset % to != 0 || e.offset < end {
            return Err(fail(format!("payload [{start}, {stop}) is not aligned or overlaps the one before")));
        }
        end = e.offset + e.length;
        let mut c = Cursor::new(&data[e.offset as usize..end as usize]);
        let enc = Encoding::read(&mut c, &e.shape, false).map_err(|x| x.context(&what))?;
        c.finish("payload").map_err(|x| x.context(&what))?;
        if enc.dtype() != e.dtype || enc.kind() != e.encoding {
            return Err(fail(format!(
                "the table says {:?} {}, the payload holds {:?} {}",
                e.dtype,
                e.encoding,
                enc.dtype(),
                enc.kind()
            )));
        }
        enc.validate(&e.shape).map_err(|x| x.context(&what))?;
        if out.insert(e.name.clone(), Encoded { shape: e.shape.clone(), encoding: enc }).is_some() {
            return Err(fail("is listed twice".into()));
        }
    }
    if end != data.len() as u64 {
        bail!("{} bytes after the last payload", data.len() as u64 - end);
    }
    Ok(out)
}

/// Rebuilds the graph in its stored order through [`Graph`]'s own constructors (so shape
/// inference checks every node) and checks the inferred facts against the stored ones.
fn rebuild(h: &GraphHeader, tensors: &BTreeMap<String, Encoded>) -> Result<Graph> {
    check_structure(h)?;
    let mut g = Graph::new();
    let gerr = |e: shrink_graph::GraphError| DeployError::invalid(e.to_string());
    let mut i = 0;
    while i < h.values.len() {
        let v = &h.values[i];
        match &v.def {
            DefHeader::Input => {
                g.add_input(&v.name, v.fact.clone()).map_err(gerr)?;
            }
            DefHeader::Const => {
                let Some(t) = tensors.get(&v.name) else { bail!("constant `{}` has no tensor", v.name) };
                let data = match &t.encoding {
                    Encoding::Raw(d) => Tensor { shape: t.shape.clone(), data: d.clone() },
                    _ => placeholder(),
                };
                let id = g.add_const(&v.name, data).map_err(gerr)?;
                if Fact::new(t.dtype(), &t.shape) != v.fact {
                    bail!(
                        "constant `{}` is {} but its tensor is {:?}{:?}",
                        v.name,
                        v.fact,
                        t.dtype(),
                        t.shape
                    );
                }
                g.values[id].fact = v.fact.clone();
            }
            DefHeader::Node { node, .. } => {
                let n = &h.nodes[*node];
                let names: Vec<String> = n.outputs.iter().map(|&o| h.values[o].name.clone()).collect();
                let outs = g.add_node(&n.name, n.op.clone(), &n.inputs, &names).map_err(gerr)?;
                for (&o, &stored) in outs.iter().zip(&n.outputs) {
                    if g.values[o].fact != h.values[stored].fact {
                        bail!(
                            "value `{}` is stored as {} but node `{}` gives {}",
                            h.values[stored].name,
                            h.values[stored].fact,
                            n.name,
                            g.values[o].fact
                        );
                    }
                }
                if outs.is_empty() {
                    bail!("node `{}` has no output", n.name);
                }
                i += outs.len();
                continue;
            }
        }
        i += 1;
    }
    g.inputs = h.inputs.clone();
    g.set_outputs(h.outputs.clone());
    Ok(g)
}

/// A writer that hashes what goes through it and counts its position.
struct Hashing<W> {
    inner: W,
    crc: crc32fast::Hasher,
    pos: u64,
}

impl<W: Write> Hashing<W> {
    fn pad_to(&mut self, pos: u64) -> std::io::Result<()> {
        const ZEROS: [u8; ALIGN as usize] = [0; ALIGN as usize];
        while self.pos < pos {
            let n = (pos - self.pos).min(ALIGN) as usize;
            self.write_all(&ZEROS[..n])?;
        }
        Ok(())
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
