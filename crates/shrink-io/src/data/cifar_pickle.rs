//! CIFAR-10 python batches (`cifar-10-batches-py/`: `data_batch_1` .. `data_batch_5`,
//! `test_batch`, what torchvision downloads), read WITHOUT executing pickle code.
//!
//! Each batch is a pickle (protocol 2) of one dict: `data` a numpy `uint8` array N×3072 (the
//! 32×32 red, green and blue planes, i.e. already CHW), `labels` a list of N ints, plus
//! `batch_label` and `filenames`, which are ignored. [`parse`] is a small pickle machine that
//! knows only the opcodes such a file uses; `GLOBAL` may name only the numpy array
//! reconstructors and `_codecs.encode` (how Python 3 pickles bytes), and `REDUCE` / `BUILD`
//! never call anything: they build inert values that [`batch`] then checks field by field.
//! Anything else is a one-line error naming the file. Every length is checked against the
//! bytes left before anything is copied.

use std::collections::HashMap;
use std::rc::Rc;

use super::error::DataError;
use super::tree::{join, Child, Tree};
use super::{Dataset, Split};

/// What [`super::load`] looks for, for the "no dataset found" message.
pub(crate) const LOOKED_FOR: &str = "CIFAR-10 python batches (data_batch_1 .. data_batch_5, test_batch, \
     optionally in cifar-10-batches-py/)";

/// The directory the official python archive unpacks to.
pub(crate) const DIR_NAME: &str = "cifar-10-batches-py";

const SIDE: usize = 32;
const CHANNELS: usize = 3;
const IMAGE: usize = CHANNELS * SIDE * SIDE;
const TEST: &str = "test_batch";
/// Deepest nesting of containers accepted (a CIFAR batch needs 4).
const MAX_DEPTH: usize = 16;

/// The globals a CIFAR batch may name: numpy's array and dtype reconstructors (numpy 1 and 2
/// module paths) and `_codecs.encode` (Python 3's protocol-2 form of `bytes`).
const GLOBALS: [&str; 5] = [
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.ndarray",
    "numpy.dtype",
    "_codecs.encode",
];

/// The number `N` of a `data_batch_N` file name.
fn train_batch_number(name: &str) -> Option<u32> {
    let n = name.strip_prefix("data_batch_")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || n.len() > 4 {
        return None;
    }
    n.parse().ok()
}

/// Is `name` a CIFAR python batch that loading `split` reads?
pub(crate) fn is_pickle_name(name: &str, split: Split) -> bool {
    match split {
        Split::Train => train_batch_number(name).is_some(),
        Split::Test => name == TEST,
    }
}

/// Does a directory with these children hold CIFAR-10 python batches (of any split)?
pub(crate) fn detect(children: &[Child]) -> bool {
    children.iter().any(|c| !c.is_dir && (c.name == TEST || train_batch_number(&c.name).is_some()))
}

/// A value of the pickle machine. Nothing here can run code.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    None,
    Bool(bool),
    Int(i64),
    Bytes(Rc<Vec<u8>>),
    Str(Rc<String>),
    List(Vec<Val>),
    Tuple(Vec<Val>),
    Dict(Vec<(Val, Val)>),
    /// `module.name` from GLOBAL (one of [`GLOBALS`]).
    Global(String),
    /// REDUCE: a call that was NOT made.
    Call(Box<Val>, Box<Val>),
    /// BUILD: an object and its state.
    Built(Box<Val>, Box<Val>),
}

/// A bounds-checked reader of the pickle stream.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let left = (self.b.len() - self.pos) as u64;
        if n > left {
            return Err(format!("truncated: needs {n} bytes at byte {}, {left} are left", self.pos));
        }
        let s = &self.b[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u64, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]) as u64)
    }
    fn u32(&mut self) -> Result<u64, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64)
    }
    fn line(&mut self) -> Result<&'a str, String> {
        let rest = &self.b[self.pos..];
        let Some(n) = rest.iter().take(256).position(|&c| c == b'\n') else {
            return Err(format!("unterminated name at byte {}", self.pos));
        };
        let s = std::str::from_utf8(&rest[..n])
            .map_err(|_| format!("a name at byte {} is not UTF-8", self.pos))?;
        self.pos += n + 1;
        Ok(s)
    }
}

/// Largest value (in [`weight`]) a memo read may copy.
const MAX_MEMO_COPY: usize = 64;

/// Number of values inside `v`, counting stops past `limit`.
fn weight(v: &Val, limit: usize) -> usize {
    let mut n = 1;
    let add = |x: &Val, n: &mut usize| {
        if *n <= limit {
            *n += weight(x, limit - *n);
        }
    };
    match v {
        Val::List(x) | Val::Tuple(x) => x.iter().for_each(|y| add(y, &mut n)),
        Val::Dict(x) => x.iter().for_each(|(k, y)| {
            add(k, &mut n);
            add(y, &mut n)
        }),
        Val::Call(a, b) | Val::Built(a, b) => {
            add(a, &mut n);
            add(b, &mut n)
        }
        _ => {}
    }
    n
}

/// A value on the machine's stack with its nesting depth (kept below [`MAX_DEPTH`], so that
/// neither checking nor dropping a value can recurse deeply).
type Entry = (Val, usize);

/// The deepest of `items`, plus one for the container holding them.
fn nest(items: &[Entry], at: usize) -> Result<usize, String> {
    let d = 1 + items.iter().map(|e| e.1).max().unwrap_or(0);
    if d > MAX_DEPTH {
        return Err(format!("values nested deeper than {MAX_DEPTH} at byte {at}"));
    }
    Ok(d)
}

/// Runs the pickle machine over `bytes` and returns the pickled value. Only the opcodes of
/// protocols 0–2 that CIFAR batches use (and Python 3's protocol-2 output of the same dict)
/// are known; any other opcode is an error naming it and its position.
pub(crate) fn parse(bytes: &[u8]) -> Result<Val, String> {
    let mut r = Reader { b: bytes, pos: 0 };
    let mut stack: Vec<Entry> = Vec::new();
    let mut marks: Vec<usize> = Vec::new();
    let mut memo: HashMap<u64, Entry> = HashMap::new();
    loop {
        let at = r.pos;
        let under = || format!("stack underflow at byte {at}");
        let op = r.u8()?;
        match op {
            0x80 => {
                let p = r.u8()?;
                if p > 2 {
                    return Err(format!("pickle protocol {p}: CIFAR batches are protocol 2"));
                }
            }
            b'}' => stack.push((Val::Dict(Vec::new()), 1)),
            b']' => stack.push((Val::List(Vec::new()), 1)),
            b')' => stack.push((Val::Tuple(Vec::new()), 1)),
            b'(' => marks.push(stack.len()),
            b'N' => stack.push((Val::None, 0)),
            0x88 => stack.push((Val::Bool(true), 0)),
            0x89 => stack.push((Val::Bool(false), 0)),
            b'K' => stack.push((Val::Int(r.u8()? as i64), 0)),
            b'M' => stack.push((Val::Int(r.u16()? as i64), 0)),
            b'J' => stack.push((Val::Int(r.u32()? as u32 as i32 as i64), 0)),
            b'U' | b'C' => {
                let n = r.u8()? as u64;
                stack.push((Val::Bytes(Rc::new(r.take(n)?.to_vec())), 0));
            }
            b'T' | b'B' => {
                let n = r.u32()?;
                stack.push((Val::Bytes(Rc::new(r.take(n)?.to_vec())), 0));
            }
            b'X' | 0x8c => {
                let n = if op == b'X' { r.u32()? } else { r.u8()? as u64 };
                let s = std::str::from_utf8(r.take(n)?)
                    .map_err(|_| format!("string at byte {at} is not UTF-8"))?;
                stack.push((Val::Str(Rc::new(s.to_string())), 0));
            }
            b'q' | b'r' => {
                let key = if op == b'q' { r.u8()? as u64 } else { r.u32()? };
                let top = stack.last().ok_or_else(|| format!("memo put on an empty stack at byte {at}"))?;
                // Copies of big containers could multiply memory: CIFAR batches reuse only
                // strings and small tuples, so only those are kept.
                if weight(&top.0, MAX_MEMO_COPY) <= MAX_MEMO_COPY {
                    memo.insert(key, top.clone());
                } else {
                    memo.remove(&key);
                }
            }
            b'h' | b'j' => {
                let key = if op == b'h' { r.u8()? as u64 } else { r.u32()? };
                let v = memo
                    .get(&key)
                    .ok_or_else(|| format!("memo {key} (byte {at}) is not available to reuse"))?;
                stack.push(v.clone());
            }
            b'c' => {
                let module = r.line()?;
                let name = r.line()?;
                let full = format!("{module}.{name}");
                if !GLOBALS.contains(&full.as_str()) {
                    return Err(format!("global `{full}` at byte {at} is not part of a CIFAR batch"));
                }
                stack.push((Val::Global(full), 0));
            }
            b't' | 0x85..=0x87 => {
                let n = match op {
                    0x85 => 1,
                    0x86 => 2,
                    0x87 => 3,
                    _ => {
                        let m = marks.pop().ok_or_else(|| format!("TUPLE without MARK at byte {at}"))?;
                        stack.len().checked_sub(m).ok_or_else(under)?
                    }
                };
                if stack.len() < n {
                    return Err(under());
                }
                let items = stack.split_off(stack.len() - n);
                let d = nest(&items, at)?;
                stack.push((Val::Tuple(items.into_iter().map(|e| e.0).collect()), d));
            }
            b'a' | b'e' | b'u' | b's' => {
                let items = match op {
                    b'a' => vec![stack.pop().ok_or_else(under)?],
                    b's' => {
                        if stack.len() < 2 {
                            return Err(under());
                        }
                        stack.split_off(stack.len() - 2)
                    }
                    _ => {
                        let m = marks
                            .pop()
                            .ok_or_else(|| format!("APPENDS/SETITEMS without MARK at byte {at}"))?;
                        if m > stack.len() {
                            return Err(under());
                        }
                        stack.split_off(m)
                    }
                };
                let d = nest(&items, at)?;
                let Some((target, td)) = stack.last_mut() else { return Err(under()) };
                *td = (*td).max(d);
                let mut it = items.into_iter().map(|e| e.0);
                match (op, target) {
                    (b'a' | b'e', Val::List(l)) => l.extend(it),
                    (b'u' | b's', Val::Dict(dict)) => {
                        while let Some(k) = it.next() {
                            let v = it
                                .next()
                                .ok_or_else(|| format!("SETITEMS with an odd count at byte {at}"))?;
                            dict.push((k, v));
                        }
                    }
                    _ => return Err(format!("APPEND/SETITEM on the wrong kind of value at byte {at}")),
                }
            }
            b'R' | b'b' => {
                if stack.len() < 2 {
                    return Err(under());
                }
                let mut items = stack.split_off(stack.len() - 2);
                let d = nest(&items, at)?;
                let (arg, f) =
                    (items.pop().unwrap_or((Val::None, 0)).0, items.pop().unwrap_or((Val::None, 0)).0);
                let v = if op == b'R' {
                    Val::Call(Box::new(f), Box::new(arg))
                } else {
                    Val::Built(Box::new(f), Box::new(arg))
                };
                stack.push((v, d));
            }
            b'.' => {
                let v = stack.pop().ok_or_else(under)?;
                if !stack.is_empty() || !marks.is_empty() {
                    return Err("values left on the stack at STOP".into());
                }
                if r.pos != bytes.len() {
                    return Err(format!("{} bytes after STOP", bytes.len() - r.pos));
                }
                return Ok(v.0);
            }
            other => {
                return Err(format!("pickle opcode 0x{other:02x} at byte {at} is not part of a CIFAR batch"))
            }
        }
        if marks.last().is_some_and(|&m| m > stack.len()) {
            return Err(format!("an opcode at byte {at} reached below its MARK"));
        }
    }
}

/// Bytes of a pickled `bytes` value: a Python 2 string, or Python 3's protocol-2 form
/// `_codecs.encode(str, 'latin1')`.
fn as_bytes(v: &Val) -> Option<Rc<Vec<u8>>> {
    match v {
        Val::Bytes(b) => Some(b.clone()),
        Val::Call(f, args) if **f == Val::Global("_codecs.encode".into()) => match &**args {
            Val::Tuple(a) if a.len() == 2 && matches!(&a[1], Val::Str(e) if e.as_str() == "latin1") => {
                let Val::Str(s) = &a[0] else { return None };
                s.chars().map(|c| u8::try_from(c as u32).ok()).collect::<Option<Vec<u8>>>().map(Rc::new)
            }
            _ => None,
        },
        _ => None,
    }
}

fn key_is(k: &Val, name: &str) -> bool {
    match k {
        Val::Str(s) => s.as_str() == name,
        _ => as_bytes(k).is_some_and(|b| b.as_slice() == name.as_bytes()),
    }
}

/// The `(images N×3072, labels)` of a parsed CIFAR batch.
pub(crate) fn batch(v: &Val) -> Result<(Rc<Vec<u8>>, Vec<u32>), String> {
    let Val::Dict(d) = v else { return Err("the pickle is not a dict".into()) };
    let get = |name: &str| d.iter().find(|(k, _)| key_is(k, name)).map(|(_, v)| v);
    let data = get("data").ok_or("the dict has no `data` entry")?;
    let labels = get("labels").ok_or("the dict has no `labels` entry")?;
    // numpy: BUILD(_reconstruct(ndarray, (0,), b'b'), (1, shape, dtype, fortran, raw)).
    let bad = |what: &str| format!("`data` is not a numpy uint8 N×3072 array ({what})");
    let Val::Built(obj, state) = data else { return Err(bad("not a built object")) };
    let Val::Call(f, _) = &**obj else { return Err(bad("not a reconstructed array")) };
    if !matches!(&**f, Val::Global(g) if g.ends_with("multiarray._reconstruct")) {
        return Err(bad("not numpy's _reconstruct"));
    }
    let Val::Tuple(st) = &**state else { return Err(bad("state is not a tuple")) };
    let [_, Val::Tuple(shape), Val::Built(dt, _), Val::Bool(false), raw] = st.as_slice() else {
        return Err(bad("unexpected array state"));
    };
    let dims: Vec<i64> = shape.iter().map(|d| if let Val::Int(i) = d { *i } else { -1 }).collect();
    let &[n, width] = dims.as_slice() else { return Err(bad(&format!("shape {dims:?}"))) };
    if n < 0 || width != IMAGE as i64 {
        return Err(bad(&format!("shape {dims:?}")));
    }
    let Val::Call(dtf, dargs) = &**dt else { return Err(bad("no dtype")) };
    let is_u1 = matches!(&**dargs, Val::Tuple(a) if a.first().and_then(as_bytes).is_some_and(|s| s.as_slice() == b"u1")
        || matches!(a.first(), Some(Val::Str(s)) if s.as_str() == "u1"));
    if **dtf != Val::Global("numpy.dtype".into()) || !is_u1 {
        return Err(bad("dtype is not u1"));
    }
    let raw = as_bytes(raw).ok_or_else(|| bad("raw data is not bytes"))?;
    if raw.len() as u64 != n as u64 * IMAGE as u64 {
        return Err(format!(
            "`data` holds {} bytes, its shape [{n}, {IMAGE}] needs {}",
            raw.len(),
            n as u64 * IMAGE as u64
        ));
    }
    let Val::List(labels) = labels else { return Err("`labels` is not a list".into()) };
    if labels.len() as i64 != n {
        return Err(format!("{} labels for {n} images", labels.len()));
    }
    let labels = labels
        .iter()
        .enumerate()
        .map(|(i, l)| match l {
            Val::Int(x) if (0..10).contains(x) => Ok(*x as u32),
            other => Err(format!("label {i} is {other:?}, not an int in 0..10")),
        })
        .collect::<Result<Vec<u32>, String>>()?;
    Ok((raw, labels))
}

/// Loads one split of a CIFAR-10 python directory.
pub(crate) fn load(tree: &Tree, base: &str, children: &[Child], split: Split) -> Result<Dataset, DataError> {
    let mut files: Vec<(u32, String)> = children
        .iter()
        .filter(|c| !c.is_dir && is_pickle_name(&c.name, split))
        .map(|c| (train_batch_number(&c.name).unwrap_or(0), c.name.clone()))
        .collect();
    files.sort();
    if split == Split::Train {
        if let Some(i) = files.iter().enumerate().position(|(i, (n, _))| *n != i as u32 + 1) {
            return Err(DataError::MissingSplit {
                path: tree.display(base),
                split: split.to_string(),
                missing: format!("data_batch_{} (batches must be numbered from 1 without gaps)", i + 1),
            });
        }
    }
    if files.is_empty() {
        return Err(DataError::MissingSplit {
            path: tree.display(base),
            split: split.to_string(),
            missing: match split {
                Split::Train => "data_batch_1 .. data_batch_5".to_string(),
                Split::Test => TEST.to_string(),
            },
        });
    }
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for (_, name) in &files {
        let rel = join(base, name);
        let data = tree.read(&rel)?;
        let parsed = parse(&data).and_then(|v| batch(&v));
        let (raw, l) =
            parsed.map_err(|e| DataError::invalid(tree.display(&rel), format!("CIFAR python batch: {e}")))?;
        images.extend_from_slice(&raw);
        labels.extend(l);
    }
    Ok(Dataset {
        channels: CHANNELS,
        height: SIDE,
        width: SIDE,
        images,
        labels,
        classes: super::cifar_bin::CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
        source: tree.display(base),
    })
}
