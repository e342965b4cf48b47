//! PyTorch `.pt` I/O: golden files written by torch (tools/pt_golden.py) read exactly; the
//! writer round-trips; corrupt and hostile files are errors, never panics or huge allocations.
//! The shared real checkpoints are compared with their safetensors twins when `SHRINK_SHARED`
//! points at the shared folder (skipped with a note otherwise):
//! `SHRINK_SHARED=/work/shared cargo test --release -p shrink-io --test pt_io`
//! (with `SHRINK_PT_OUT=DIR` it also writes them back as `.pt` for tools/pt_check_written.py).
mod shared;

use candle_core::{Device, Tensor};
use shrink_io::model_file::{read_safetensors, RawTensors};
use shrink_io::pt::{parse_pt, pt_bytes, read_pt, save_pt, PtTensor};
use shrink_ir::zoo;
use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pt").join(name)
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
}

fn assert_same(got: &BTreeMap<String, Tensor>, want: &BTreeMap<String, Tensor>, what: &str) {
    let gk: Vec<_> = got.keys().collect();
    let wk: Vec<_> = want.keys().collect();
    assert_eq!(gk, wk, "{what}: keys");
    for (k, w) in want {
        let g = &got[k];
        assert_eq!(g.dims(), w.dims(), "{what}: shape of {k}");
        assert_eq!(bits(g), bits(w), "{what}: values of {k}");
    }
}

#[test]
fn goldens_read_exactly() {
    for name in ["plain", "nested", "views", "dtypes", "proto4"] {
        let got = read_pt(&fixture(&format!("{name}.pt"))).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = read_safetensors(&fixture(&format!("{name}.expected.safetensors"))).unwrap();
        assert!(got.metadata.is_empty());
        assert_same(&got.tensors, &want.tensors, name);
    }
}

#[test]
fn nested_checkpoint_drops_module_prefix() {
    let got = read_pt(&fixture("nested.pt")).unwrap();
    assert!(got.tensors.contains_key("conv.weight"));
    assert!(got.tensors.keys().all(|k| !k.starts_with("module.")));
}

fn err_of(path: &Path) -> String {
    match read_pt(path) {
        Ok(_) => panic!("{} should not load", path.display()),
        Err(e) => e.to_string(),
    }
}

fn err_bytes(bytes: &[u8]) -> String {
    match parse_pt(bytes) {
        Ok(_) => panic!("should not load"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn rejected_goldens_say_why() {
    let e = err_of(&fixture("legacy.pt"));
    assert!(e.contains("legacy.pt") && e.contains("legacy (non-zip)"), "{e}");
    let e = err_of(&fixture("module.pt"));
    assert!(e.contains("disallowed pickle global `torch.nn.modules.linear.Linear`"), "{e}");
    assert!(e.contains("state_dict()"), "{e}");
    let e = err_of(&fixture("complex.pt"));
    assert!(e.contains("tensor `z`") && e.contains("unsupported dtype torch.ComplexFloatStorage"), "{e}");
    assert!(!e.contains('\n'));
}

#[test]
fn load_model_accepts_pt_and_infers_arch() {
    let dir = tempfile::tempdir().unwrap();
    let model = zoo::build("resnet20", 3, &Device::Cpu).unwrap();
    let path = dir.path().join("r20.pt");
    save_pt(&model, &path).unwrap();
    let back = shrink_io::load_model(&path, None).unwrap();
    assert_eq!(back.meta.arch, "resnet20");
    for (name, p) in model.params.iter() {
        assert_eq!(bits(p.var.as_tensor()), bits(&back.params.tensor(name).unwrap()), "{name}");
    }
    // num_batches_tracked is written for every BatchNorm (as torch modules expect), as int64 0.
    let raw = read_pt(&path).unwrap();
    assert_eq!(raw.tensors["bn1.num_batches_tracked"].dims(), &[] as &[usize]);
    // A .pt whose keys fit no architecture is an error naming the problem.
    let lone = dir.path().join("lone.pt");
    let t = [("x.weight".to_string(), PtTensor::F32 { shape: vec![1], values: vec![1.0] })];
    std::fs::write(&lone, pt_bytes(&t).unwrap()).unwrap();
    let e = shrink_io::load_model(&lone, None).err().unwrap().to_string();
    assert!(e.contains("lone.pt") && e.contains("no zoo architecture"), "{e}");
    let e = shrink_io::load_model(&lone, Some("resnet20")).err().unwrap().to_string();
    assert!(e.contains("missing key"), "{e}");
}

#[test]
fn writer_round_trips() {
    let tensors = vec![
        (
            "a.weight".to_string(),
            PtTensor::F32 { shape: vec![2, 3, 1, 2], values: (0..12).map(|i| i as f32 * 0.1).collect() },
        ),
        ("scalar".to_string(), PtTensor::F32 { shape: vec![], values: vec![f32::MIN_POSITIVE] }),
        ("empty".to_string(), PtTensor::F32 { shape: vec![0, 4], values: vec![] }),
        (
            "big".to_string(),
            PtTensor::F32 { shape: vec![70000], values: (0..70000).map(|i| (i as f32).sin()).collect() },
        ),
        ("count".to_string(), PtTensor::I64 { shape: vec![], values: vec![123456] }),
    ];
    let bytes = pt_bytes(&tensors).unwrap();
    let RawTensors { tensors: back, .. } = parse_pt(&bytes).unwrap();
    assert_eq!(back.len(), tensors.len());
    for (name, t) in &tensors {
        let g = &back[name];
        match t {
            PtTensor::F32 { shape, values } => {
                assert_eq!(g.dims(), shape.as_slice());
                assert_eq!(bits(g), values.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
            PtTensor::I64 { values, .. } => assert_eq!(bits(g), vec![(values[0] as f32).to_bits()]),
        }
    }
    // Deterministic output.
    assert_eq!(bytes, pt_bytes(&tensors).unwrap());
    // More than one SETITEMS batch (1000 items).
    let many: Vec<_> = (0..1500)
        .map(|i| (format!("t{i}"), PtTensor::F32 { shape: vec![1], values: vec![i as f32] }))
        .collect();
    let back = parse_pt(&pt_bytes(&many).unwrap()).unwrap().tensors;
    assert_eq!(back.len(), 1500);
    assert_eq!(bits(&back["t1234"]), vec![1234f32.to_bits()]);
}

/// A zip holding `records` (stored, or deflated when `deflate`).
fn zip_of(records: &[(&str, &[u8])], deflate: bool) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let method = if deflate { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, data) in records {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// data.pkl of `{'w': _rebuild_tensor_v2(storage('0', numel), offset, size, stride)}`.
fn pickle_one(numel: u64, offset: u8, size: &[u8], stride: &[u8]) -> Vec<u8> {
    let mut p = b"\x80\x02}(X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu".to_vec();
    p.extend([0x8a, 8]);
    p.extend(numel.to_le_bytes());
    p.extend(b"tQK");
    p.push(offset);
    for dims in [size, stride] {
        p.push(b'(');
        for &d in dims {
            p.extend([b'K', d]);
        }
        p.push(b't');
    }
    p.extend(b"\x89NtRu.");
    p
}

#[test]
fn handmade_views_and_deflate() {
    let data: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
    // A 2x2 view at offset 1 with strides (3, 1) of [0..6): [[1, 2], [4, 5]].
    for deflate in [false, true] {
        let z = zip_of(&[("x/data.pkl", &pickle_one(6, 1, &[2, 2], &[3, 1])), ("x/data/0", &data)], deflate);
        let t = parse_pt(&z).unwrap().tensors.remove("w").unwrap();
        assert_eq!(t.to_vec2::<f32>().unwrap(), vec![vec![1.0, 2.0], vec![4.0, 5.0]]);
    }
}

#[test]
fn hostile_files_are_errors() {
    let data: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
    // A 10-byte file.
    let e = err_bytes(b"PK\x03\x04\x00\x00\x00\x00\x00\x00");
    assert!(e.contains("zip"), "{e}");
    // A storage claiming 25e9 float32 elements (100 GB) backed by a 10-byte record.
    let huge = zip_of(
        &[("x/data.pkl", &pickle_one(25_000_000_000, 0, &[1], &[1])), ("x/data/0", b"0123456789")],
        false,
    );
    let e = err_bytes(&huge);
    assert!(
        e.contains("tensor `w`") && e.contains("claims 25000000000 float32") && e.contains("holds 10 bytes"),
        "{e}"
    );
    // A view reaching past its storage.
    let past = zip_of(&[("x/data.pkl", &pickle_one(6, 1, &[2, 3], &[3, 1])), ("x/data/0", &data)], false);
    let e = err_bytes(&past);
    assert!(e.contains("reaches element 6 of a 6-element storage"), "{e}");
    // A stride-0 view of 255^4 elements over one element exceeds the expansion budget.
    let exp = zip_of(&[("x/data.pkl", &pickle_one(1, 0, &[255; 4], &[0; 4])), ("x/data/0", &data)], false);
    let e = err_bytes(&exp);
    assert!(e.contains("expansion limit"), "{e}");
    // A missing storage record.
    let e = err_bytes(&zip_of(&[("x/data.pkl", &pickle_one(6, 0, &[6], &[1]))], false));
    assert!(e.contains("storage record `x/data/0` is missing"), "{e}");
    // os.system (GLOBAL) and STACK_GLOBAL of builtins.eval.
    let evil = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00echoq\x01\x85q\x02Rq\x03.";
    let e = err_bytes(&zip_of(&[("x/data.pkl", evil)], false));
    assert!(e.contains("disallowed pickle global `os.system`"), "{e}");
    let evil4 = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.";
    let e = err_bytes(&zip_of(&[("x/data.pkl", evil4)], false));
    assert!(e.contains("disallowed pickle global `builtins.eval`"), "{e}");
    // Bad opcode, stack underflow, truncated pickle, no STOP.
    for (pkl, want) in [
        (&b"\x80\x02\xff."[..], "unsupported pickle opcode 0xff at byte 2"),
        (b"\x80\x02t.", "no MARK"),
        (b"\x80\x02a.", "stack underflow"),
        (b"\x80\x02X\xff\xff\x00\x00ab.", "truncated"),
        (b"\x80\x02}", "without STOP"),
        (b"\x80\x02h\x05.", "memo key 5 is not set"),
        (b"\x80\x02K\x01.", "holds a int, not a dict"),
        (b"\x80\x02}X\x01\x00\x00\x00aK\x01s.", "no tensors found"),
    ] {
        let e = err_bytes(&zip_of(&[("x/data.pkl", pkl)], false));
        assert!(e.contains("data.pkl") || e.contains(want), "{e}");
        assert!(e.contains(want), "{want}: {e}");
    }
    // Not a torch archive at all.
    let e = err_bytes(&zip_of(&[("hello.txt", b"hi")], false));
    assert!(e.contains("no <name>/data.pkl"), "{e}");
    let e = err_bytes(&zip_of(&[("m/constants.pkl", b"")], false));
    assert!(e.contains("TorchScript"), "{e}");
    let e = err_bytes(b"");
    assert!(e.contains("not a PyTorch .pt file"), "{e}");
}

/// A tiny deterministic PRNG (xorshift) for the corruption tests.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn truncated_random_and_flipped_files_never_panic() {
    let good = std::fs::read(fixture("nested.pt")).unwrap();
    for len in (0..good.len()).step_by(7) {
        assert!(parse_pt(&good[..len]).is_err(), "truncated to {len} bytes loaded");
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for n in [1usize, 10, 100, 1000, 5000] {
        let mut junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        assert!(parse_pt(&junk).is_err());
        junk[..4.min(n)].copy_from_slice(&b"PK\x03\x04"[..4.min(n)]);
        assert!(parse_pt(&junk).is_err());
    }
    // Flipped bytes anywhere (the zip CRC catches most; the rest must not panic).
    for _ in 0..3000 {
        let mut b = good.clone();
        for _ in 0..1 + rng.next() % 4 {
            let i = (rng.next() as usize) % b.len();
            b[i] = rng.next() as u8;
        }
        let _ = parse_pt(&b);
    }
    // Mutated pickles inside a valid zip (no CRC protection for the interpreter).
    let mut z = zip::ZipArchive::new(Cursor::new(&good[..])).unwrap();
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut v).unwrap();
        records.push((f.name().unwrap().to_string(), v));
    }
    let (pkl_name, pkl) = records.iter().find(|(n, _)| n.ends_with("data.pkl")).cloned().unwrap();
    for _ in 0..1500 {
        let mut p = pkl.clone();
        for _ in 0..1 + rng.next() % 3 {
            let i = (rng.next() as usize) % p.len();
            p[i] = rng.next() as u8;
        }
        let recs: Vec<(&str, &[u8])> =
            records.iter().map(|(n, d)| (n.as_str(), if *n == pkl_name { &p[..] } else { &d[..] })).collect();
        let _ = parse_pt(&zip_of(&recs, false));
    }
}

#[test]
#[cfg_attr(not(shrink_shared), ignore = "needs SHRINK_SHARED (pretrained ResNets)")]
fn shared_pt_matches_safetensors_bit_for_bit() {
    for name in ["resnet20-cifar10", "resnet32-cifar10"] {
        let pt = shared::file(&format!("models/{name}.pt"));
        let st = shared::file(&format!("models/{name}.safetensors"));
        let a = shrink_io::load_model(&pt, None).unwrap_or_else(|e| panic!("{e}"));
        let b = shrink_io::load_model(&st, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.meta.arch, b.meta.arch, "{name}");
        assert_eq!(a.params.len(), b.params.len());
        for (k, p) in b.params.iter() {
            assert_eq!(bits(&a.params.tensor(k).unwrap()), bits(p.var.as_tensor()), "{name}: {k}");
        }
        eprintln!("{name}: .pt and .safetensors agree on {} tensors (arch {})", a.params.len(), a.meta.arch);
        // For tools/pt_check_written.py (torch.load of our writer's output): SHRINK_PT_OUT=DIR.
        if let Some(out) = std::env::var_os("SHRINK_PT_OUT") {
            let path = PathBuf::from(out).join(format!("{name}.written.pt"));
            save_pt(&b, &path).unwrap();
            eprintln!("wrote {}", path.display());
        }
    }
}
