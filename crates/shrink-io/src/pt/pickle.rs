//! A restricted pickle interpreter for the `data.pkl` of `torch.save` archives.
//!
//! Only the opcodes torch (and Python's pickler at protocols 0-5) emit for state_dicts are
//! understood, and only whitelisted globals can be named: `collections.OrderedDict`, the
//! `torch._utils._rebuild_*` tensor constructors and the `torch.*Storage` types. Nothing is ever
//! called: "calling" a whitelisted global builds a plain description ([`Obj::Tensor`], a dict).
//! Every other global (`os.system`, a pickled `nn.Module` class, ...) is an error.
//!
//! Containers live in an arena and refer to each other by index, so memo sharing is
//! Python-like, cloning is O(1) and dropping never recurses (no stack overflow on deeply
//! nested input). All lengths are checked against the remaining input before allocating.
use std::collections::HashMap;
use std::rc::Rc;

/// Errors of the interpreter (plain messages; the caller adds the file name).
pub type PResult<T> = std::result::Result<T, String>;

/// Element type of a storage, from its `torch.*Storage` class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageKind {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
    /// A storage class shrink does not read (complex, quantized, ...): an error when a tensor
    /// uses it.
    Other(Rc<str>),
}

impl StorageKind {
    fn from_class(name: &str) -> StorageKind {
        match name {
            "FloatStorage" => StorageKind::F32,
            "DoubleStorage" => StorageKind::F64,
            "HalfStorage" => StorageKind::F16,
            "BFloat16Storage" => StorageKind::BF16,
            "LongStorage" => StorageKind::I64,
            "IntStorage" => StorageKind::I32,
            "ShortStorage" => StorageKind::I16,
            "CharStorage" => StorageKind::I8,
            "ByteStorage" => StorageKind::U8,
            "BoolStorage" => StorageKind::Bool,
            other => StorageKind::Other(Rc::from(other)),
        }
    }

    /// Bytes per element (`None` for unsupported kinds).
    pub fn elem_size(&self) -> Option<usize> {
        Some(match self {
            StorageKind::F32 | StorageKind::I32 => 4,
            StorageKind::F64 | StorageKind::I64 => 8,
            StorageKind::F16 | StorageKind::BF16 | StorageKind::I16 => 2,
            StorageKind::I8 | StorageKind::U8 | StorageKind::Bool => 1,
            StorageKind::Other(_) => return None,
        })
    }

    /// torch's name of the dtype (for messages).
    pub fn name(&self) -> String {
        match self {
            StorageKind::F32 => "float32".into(),
            StorageKind::F64 => "float64".into(),
            StorageKind::F16 => "float16".into(),
            StorageKind::BF16 => "bfloat16".into(),
            StorageKind::I64 => "int64".into(),
            StorageKind::I32 => "int32".into(),
            StorageKind::I16 => "int16".into(),
            StorageKind::I8 => "int8".into(),
            StorageKind::U8 => "uint8".into(),
            StorageKind::Bool => "bool".into(),
            StorageKind::Other(n) => format!("torch.{n}"),
        }
    }
}

/// A storage named by a persistent id `('storage', torch.XStorage, key, location, numel)`.
#[derive(Debug, Clone)]
pub struct StorageRef {
    pub kind: StorageKind,
    /// Record name under `data/` in the archive.
    pub key: Rc<str>,
    /// Number of elements the pickle claims (checked against the record by the caller).
    pub numel: u64,
}

/// A tensor view: `_rebuild_tensor_v2(storage, offset, size, stride, ...)`.
#[derive(Debug, Clone)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub stride: Vec<u64>,
}

/// The whitelisted globals.
#[derive(Debug, Clone, PartialEq)]
pub enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildTensorV2,
    RebuildParameter,
    RebuildParameterWithState,
    Storage(StorageKind),
}

fn resolve_global(module: &str, name: &str) -> PResult<Global> {
    Ok(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
        ("torch", n) if n.ends_with("Storage") && n.len() > "Storage".len() => {
            Global::Storage(StorageKind::from_class(n))
        }
        _ => {
            let hint = if module == "__main__" || module.starts_with("torch.nn") {
                " (a pickled module/class: save `model.state_dict()` instead)"
            } else {
                ""
            };
            return Err(format!(
                "disallowed pickle global `{}.{}`: only state_dict tensors are read{hint}",
                printable(module),
                printable(name)
            ));
        }
    })
}

/// Truncates and escapes untrusted text for an error message.
pub fn printable(s: &str) -> String {
    let mut out: String = s.chars().take(60).flat_map(|c| c.escape_debug()).collect();
    if s.chars().count() > 60 {
        out.push_str("...");
    }
    out
}

/// A pickle value. Containers are indices into the interpreter's arena.
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer outside i64 (LONG1/LONG4); kept only as a placeholder.
    BigInt,
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Obj(usize),
}

/// Arena objects.
#[derive(Debug)]
pub enum Obj {
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Dict),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

/// An insertion-ordered dict; string keys are deduplicated (last write wins) in O(1).
#[derive(Debug, Default)]
pub struct Dict {
    pub entries: Vec<(Value, Value)>,
    index: HashMap<Rc<str>, usize>,
}

impl Dict {
    fn insert(&mut self, k: Value, v: Value) {
        if let Value::Str(s) = &k {
            if let Some(&i) = self.index.get(s) {
                self.entries[i].1 = v;
                return;
            }
            self.index.insert(s.clone(), self.entries.len());
        }
        self.entries.push((k, v));
    }
}

/// The result of running a pickle: the top value and the arena it refers into.
pub struct Unpickled {
    pub top: Value,
    pub arena: Vec<Obj>,
}

impl Unpickled {
    pub fn obj(&self, v: &Value) -> Option<&Obj> {
        match v {
            Value::Obj(i) => self.arena.get(*i),
            _ => None,
        }
    }

    /// A short type name for messages.
    pub fn type_name(&self, v: &Value) -> &'static str {
        match v {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Obj(_) => match self.obj(v) {
                Some(Obj::Tuple(_)) => "tuple",
                Some(Obj::List(_)) => "list",
                Some(Obj::Dict(_)) => "dict",
                Some(Obj::Global(_)) => "class",
                Some(Obj::Storage(_)) => "storage",
                Some(Obj::Tensor(_)) => "tensor",
                None => "object",
            },
        }
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
    arena: Vec<Obj>,
}

/// Runs `data` (a whole pickle) and returns its top value.
pub fn unpickle(data: &[u8]) -> PResult<Unpickled> {
    let mut m = Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        arena: Vec::new(),
    };
    let top = m.run()?;
    Ok(Unpickled { top, arena: m.arena })
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> PResult<&'a [u8]> {
        let data: &'a [u8] = self.data;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| format!("pickle truncated at byte {} (needs {n} more bytes)", self.pos))?;
        let s = &data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> PResult<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> PResult<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> PResult<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> PResult<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    /// A text line (protocol 0 arguments), without its newline.
    fn line(&mut self) -> PResult<&'a str> {
        let data: &'a [u8] = self.data;
        let rest = &data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| format!("pickle truncated at byte {} (unterminated line)", self.pos))?;
        self.pos += n + 1;
        std::str::from_utf8(&rest[..n]).map_err(|_| format!("non-UTF-8 text before byte {}", self.pos))
    }

    fn utf8(&mut self, n: u64) -> PResult<Value> {
        let n = usize::try_from(n).map_err(|_| "string length overflows".to_string())?;
        let b = self.take(n)?;
        let s =
            std::str::from_utf8(b).map_err(|_| format!("invalid UTF-8 string before byte {}", self.pos))?;
        Ok(Value::Str(Rc::from(s)))
    }

    fn bytes(&mut self, n: u64) -> PResult<Value> {
        let n = usize::try_from(n).map_err(|_| "bytes length overflows".to_string())?;
        Ok(Value::Bytes(Rc::from(self.take(n)?)))
    }

    fn pop(&mut self) -> PResult<Value> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(format!("pickle pops across a MARK at byte {}", self.pos));
        }
        self.stack.pop().ok_or_else(|| format!("pickle stack underflow at byte {}", self.pos))
    }

    fn top_obj(&mut self) -> PResult<&mut Obj> {
        let pos = self.pos;
        match self.stack.last() {
            Some(Value::Obj(i)) => Ok(&mut self.arena[*i]),
            Some(_) => Err(format!("pickle modifies a non-container at byte {pos}")),
            None => Err(format!("pickle stack underflow at byte {pos}")),
        }
    }

    fn pop_mark(&mut self) -> PResult<Vec<Value>> {
        let m = self.marks.pop().ok_or_else(|| format!("pickle has no MARK at byte {}", self.pos))?;
        Ok(self.stack.split_off(m.min(self.stack.len())))
    }

    fn alloc(&mut self, o: Obj) -> Value {
        self.arena.push(o);
        Value::Obj(self.arena.len() - 1)
    }

    fn memo_get(&self, k: u64) -> PResult<Value> {
        self.memo
            .get(&k)
            .cloned()
            .ok_or_else(|| format!("pickle memo key {k} is not set (byte {})", self.pos))
    }

    fn memo_put(&mut self, k: u64) -> PResult<()> {
        let v = self
            .stack
            .last()
            .cloned()
            .ok_or_else(|| format!("pickle stack underflow at byte {}", self.pos))?;
        self.memo.insert(k, v);
        Ok(())
    }

    fn int_of(&self, v: &Value, what: &str) -> PResult<i64> {
        match v {
            Value::Int(i) => Ok(*i),
            Value::Bool(b) => Ok(*b as i64),
            _ => Err(format!("{what} is not an integer")),
        }
    }

    fn uint_of(&self, v: &Value, what: &str) -> PResult<u64> {
        let i = self.int_of(v, what)?;
        u64::try_from(i).map_err(|_| format!("{what} is negative ({i})"))
    }

    fn ints_of(&self, v: &Value, what: &str) -> PResult<Vec<u64>> {
        let items = match v {
            Value::Obj(i) => match &self.arena[*i] {
                Obj::Tuple(t) | Obj::List(t) => t,
                _ => return Err(format!("{what} is not a tuple")),
            },
            _ => return Err(format!("{what} is not a tuple")),
        };
        items.iter().map(|x| self.uint_of(x, what)).collect()
    }

    fn tuple_items(&self, v: &Value, what: &str) -> PResult<Vec<Value>> {
        match v {
            Value::Obj(i) => match &self.arena[*i] {
                Obj::Tuple(t) => Ok(t.clone()),
                _ => Err(format!("{what} is not a tuple")),
            },
            _ => Err(format!("{what} is not a tuple")),
        }
    }

    fn persistent_load(&mut self, pid: Value) -> PResult<Value> {
        let items = self.tuple_items(&pid, "persistent id")?;
        let tag = match items.first() {
            Some(Value::Str(s)) => s.clone(),
            _ => return Err("persistent id is not ('storage', ...)".into()),
        };
        if &*tag != "storage" || items.len() != 5 {
            return Err(format!("unsupported persistent id `{}` ({} fields)", printable(&tag), items.len()));
        }
        let kind = match &items[1] {
            Value::Obj(i) => match &self.arena[*i] {
                Obj::Global(Global::Storage(k)) => k.clone(),
                _ => return Err("persistent id names no torch storage type".into()),
            },
            _ => return Err("persistent id names no torch storage type".into()),
        };
        let key = match &items[2] {
            Value::Str(s) => s.clone(),
            _ => return Err("storage key is not a string".into()),
        };
        let numel = self.uint_of(&items[4], "storage size")?;
        Ok(self.alloc(Obj::Storage(StorageRef { kind, key, numel })))
    }

    fn call(&mut self, callable: Value, args: Value) -> PResult<Value> {
        let g = match &callable {
            Value::Obj(i) => match &self.arena[*i] {
                Obj::Global(g) => g.clone(),
                _ => return Err(format!("pickle calls a non-class at byte {}", self.pos)),
            },
            _ => return Err(format!("pickle calls a non-class at byte {}", self.pos)),
        };
        let args = self.tuple_items(&args, "call arguments")?;
        match g {
            Global::OrderedDict => {
                if !args.is_empty() {
                    return Err("OrderedDict(...) with arguments is not supported".into());
                }
                Ok(self.alloc(Obj::Dict(Dict::default())))
            }
            Global::RebuildTensor | Global::RebuildTensorV2 => {
                if args.len() < 4 {
                    return Err(format!("_rebuild_tensor with {} arguments (needs >= 4)", args.len()));
                }
                let storage = match &args[0] {
                    Value::Obj(i) => match &self.arena[*i] {
                        Obj::Storage(s) => s.clone(),
                        _ => return Err("_rebuild_tensor argument 0 is not a storage".into()),
                    },
                    _ => return Err("_rebuild_tensor argument 0 is not a storage".into()),
                };
                let offset = self.uint_of(&args[1], "storage offset")?;
                let shape = self.ints_of(&args[2], "tensor size")?;
                let stride = self.ints_of(&args[3], "tensor stride")?;
                if shape.len() != stride.len() {
                    return Err(format!(
                        "tensor size has {} dims but stride has {}",
                        shape.len(),
                        stride.len()
                    ));
                }
                Ok(self.alloc(Obj::Tensor(TensorRef { storage, offset, shape, stride })))
            }
            Global::RebuildParameter | Global::RebuildParameterWithState => match args.first() {
                Some(v @ Value::Obj(i)) if matches!(self.arena[*i], Obj::Tensor(_)) => Ok(v.clone()),
                _ => Err("_rebuild_parameter argument 0 is not a tensor".into()),
            },
            Global::Storage(k) => Err(format!("pickle instantiates storage {} directly", k.name())),
        }
    }

    fn run(&mut self) -> PResult<Value> {
        loop {
            let at = self.pos;
            let op = self.u8().map_err(|_| format!("pickle ends at byte {at} without STOP"))?;
            match op {
                0x80 => {
                    let p = self.u8()?;
                    if p > 5 {
                        return Err(format!("unsupported pickle protocol {p}"));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: a length hint only
                }
                b'.' => {
                    // STOP
                    let v = self.pop()?;
                    return Ok(v);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.stack.last().cloned().ok_or("pickle DUP on an empty stack")?;
                    self.stack.push(v);
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'K' => {
                    let v = self.u8()? as i64;
                    self.stack.push(Value::Int(v));
                }
                b'M' => {
                    let v = self.u16()? as i64;
                    self.stack.push(Value::Int(v));
                }
                b'J' => {
                    let v = self.u32()? as i32 as i64;
                    self.stack.push(Value::Int(v));
                }
                0x8a | 0x8b => {
                    // LONG1 / LONG4: little-endian two's complement
                    let n = if op == 0x8a { self.u8()? as u64 } else { self.u32()? as u64 };
                    let n = usize::try_from(n).map_err(|_| "LONG length overflows".to_string())?;
                    let b = self.take(n)?;
                    self.stack.push(long_value(b));
                }
                b'I' | b'L' => {
                    // INT / LONG (protocol 0 text)
                    let line = self.line()?;
                    let t = line.trim_end_matches('L');
                    let v = match t {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        _ => t.parse::<i64>().map(Value::Int).unwrap_or(Value::BigInt),
                    };
                    self.stack.push(v);
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                    self.stack.push(Value::Float(v));
                }
                b'X' => {
                    let n = self.u32()? as u64;
                    let v = self.utf8(n)?;
                    self.stack.push(v);
                }
                0x8c => {
                    let n = self.u8()? as u64;
                    let v = self.utf8(n)?;
                    self.stack.push(v);
                }
                0x8d => {
                    let n = self.u64()?;
                    let v = self.utf8(n)?;
                    self.stack.push(v);
                }
                b'U' => {
                    // SHORT_BINSTRING (protocol 1 str, latin-1 in Python 3; ASCII in practice)
                    let n = self.u8()? as u64;
                    let v = self.latin1(n)?;
                    self.stack.push(v);
                }
                b'T' => {
                    let n = self.u32()? as u64;
                    let v = self.latin1(n)?;
                    self.stack.push(v);
                }
                b'C' => {
                    let n = self.u8()? as u64;
                    let v = self.bytes(n)?;
                    self.stack.push(v);
                }
                b'B' => {
                    let n = self.u32()? as u64;
                    let v = self.bytes(n)?;
                    self.stack.push(v);
                }
                0x8e => {
                    let n = self.u64()?;
                    let v = self.bytes(n)?;
                    self.stack.push(v);
                }
                b'}' => {
                    let v = self.alloc(Obj::Dict(Dict::default()));
                    self.stack.push(v);
                }
                b']' => {
                    let v = self.alloc(Obj::List(Vec::new()));
                    self.stack.push(v);
                }
                b')' => {
                    let v = self.alloc(Obj::Tuple(Vec::new()));
                    self.stack.push(v);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Obj::Tuple(items));
                    self.stack.push(v);
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    let v = self.alloc(Obj::Tuple(items));
                    self.stack.push(v);
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Obj::List(items));
                    self.stack.push(v);
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(format!("DICT with an odd number of items at byte {at}"));
                    }
                    let mut d = Dict::default();
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        d.insert(k, v);
                    }
                    let v = self.alloc(Obj::Dict(d));
                    self.stack.push(v);
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top_obj()? {
                        Obj::List(l) => l.push(v),
                        _ => return Err(format!("APPEND to a non-list at byte {at}")),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top_obj()? {
                        Obj::List(l) => l.extend(items),
                        _ => return Err(format!("APPENDS to a non-list at byte {at}")),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.top_obj()? {
                        Obj::Dict(d) => d.insert(k, v),
                        _ => return Err(format!("SETITEM on a non-dict at byte {at}")),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(format!("SETITEMS with an odd number of items at byte {at}"));
                    }
                    match self.top_obj()? {
                        Obj::Dict(d) => {
                            let mut it = items.into_iter();
                            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                                d.insert(k, v);
                            }
                        }
                        _ => return Err(format!("SETITEMS on a non-dict at byte {at}")),
                    }
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = resolve_global(module, name)?;
                    let v = self.alloc(Obj::Global(g));
                    self.stack.push(v);
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return Err(format!("STACK_GLOBAL without two strings at byte {at}"));
                    };
                    let g = resolve_global(&module, &name)?;
                    let v = self.alloc(Obj::Global(g));
                    self.stack.push(v);
                }
                b'R' | 0x81 => {
                    // REDUCE / NEWOBJ: both "construct" a whitelisted global from a tuple
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.call(callable, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    // BUILD: object state (OrderedDict `_metadata`, parameter hooks) is ignored
                    let _state = self.pop()?;
                    match self.top_obj()? {
                        Obj::Dict(_) | Obj::Tensor(_) => {}
                        _ => return Err(format!("BUILD on an unsupported object at byte {at}")),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent_load(pid)?;
                    self.stack.push(v);
                }
                b'q' => {
                    let k = self.u8()? as u64;
                    self.memo_put(k)?;
                }
                b'r' => {
                    let k = self.u32()? as u64;
                    self.memo_put(k)?;
                }
                b'p' => {
                    let k = self.line()?.parse::<u64>().map_err(|_| format!("bad PUT key at byte {at}"))?;
                    self.memo_put(k)?;
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = self.u8()? as u64;
                    let v = self.memo_get(k)?;
                    self.stack.push(v);
                }
                b'j' => {
                    let k = self.u32()? as u64;
                    let v = self.memo_get(k)?;
                    self.stack.push(v);
                }
                b'g' => {
                    let k = self.line()?.parse::<u64>().map_err(|_| format!("bad GET key at byte {at}"))?;
                    let v = self.memo_get(k)?;
                    self.stack.push(v);
                }
                other => {
                    return Err(format!("unsupported pickle opcode 0x{other:02x} at byte {at}"));
                }
            }
        }
    }

    fn latin1(&mut self, n: u64) -> PResult<Value> {
        let n = usize::try_from(n).map_err(|_| "string length overflows".to_string())?;
        let s: String = self.take(n)?.iter().map(|&b| b as char).collect();
        Ok(Value::Str(Rc::from(s)))
    }
}

/// LONG1/LONG4 payload (little-endian two's complement) as a value.
fn long_value(b: &[u8]) -> Value {
    if b.is_empty() {
        return Value::Int(0);
    }
    let negative = b[b.len() - 1] & 0x80 != 0;
    let fill = if negative { 0xff } else { 0 };
    // Significant bytes beyond 8 must be pure sign extension for an i64.
    if b.len() > 8 && b[8..].iter().any(|&x| x != fill) {
        return Value::BigInt;
    }
    let mut buf = [fill; 8];
    let n = b.len().min(8);
    buf[..n].copy_from_slice(&b[..n]);
    let v = i64::from_le_bytes(buf);
    if b.len() > 8 && ((v < 0) != negative) {
        return Value::BigInt;
    }
    Value::Int(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long1_values() {
        assert!(matches!(long_value(&[]), Value::Int(0)));
        assert!(matches!(long_value(&[0xff]), Value::Int(-1)));
        assert!(matches!(long_value(&[0x00, 0x01]), Value::Int(256)));
        assert!(matches!(long_value(&[0xff; 9]), Value::Int(-1)));
        assert!(matches!(long_value(&[0, 0, 0, 0, 0, 0, 0, 0, 1]), Value::BigInt));
    }

    #[test]
    fn rejects_os_system() {
        let p = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsq\x00\x85R.";
        let e = unpickle(p).err().unwrap();
        assert!(e.contains("os.system"), "{e}");
    }
}
