//! Every encoding round-trips (property tests over lengths, bit widths, sparsities and gaps),
//! Huffman coding is never larger than fixed width plus its table, and decoding rejects codes
//! out of range.
use proptest::prelude::*;
use shrink_graph::TensorData;
use shrink_runtime::deploy::huffman;
use shrink_runtime::deploy::wire::Cursor;
use shrink_runtime::deploy::{BitPacked, Codebook, Codes, Encoding, QuantAxis, Scheme, Sparse};
use shrink_runtime::Csr;

/// Writes `e`, checks the size is exact, reads it back and checks it is equal.
fn roundtrip(e: &Encoding, shape: &[usize]) -> Encoding {
    let mut out = Vec::new();
    e.write(&mut out);
    assert_eq!(out.len(), e.encoded_size(), "exact encoded size of {}", e.describe());
    let mut c = Cursor::new(&out);
    let back = Encoding::read(&mut c, shape, false).unwrap();
    c.finish("payload").unwrap();
    back.validate(shape).unwrap();
    assert_eq!(&back, e);
    back
}

fn raw(v: &[f32]) -> Encoding {
    Encoding::Raw(TensorData::F32(v.to_vec().into()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn bitpacked_roundtrips(
        channels in 1usize..6, inner in 0usize..40, bits in 1u8..=8,
        per_channel: bool, symmetric: bool, huffman: bool, seed: u64,
    ) {
        let shape = [channels, inner];
        let vals: Vec<f32> = (0..channels * inner)
            .map(|i| (((i as u64 ^ seed).wrapping_mul(2_654_435_761) % 2001) as f32 - 1000.0) / 250.0)
            .collect();
        let axis = if per_channel { QuantAxis::PerChannel(0) } else { QuantAxis::PerTensor };
        let scheme = if symmetric { Scheme::Symmetric } else { Scheme::Affine };
        let b = BitPacked::quantize(&vals, &shape, bits, axis, scheme).unwrap();
        let b = BitPacked { codes: b.codes.restored(huffman).unwrap(), ..b };
        let back = roundtrip(&Encoding::BitPacked(b.clone()), &shape);
        let dec = back.decode_f32(&shape).unwrap();
        for (i, (&x, &y)) in vals.iter().zip(&dec).enumerate() {
            let s = b.scales[if per_channel { i / inner.max(1) } else { 0 }];
            // Symmetric 1-bit codes are {-1, 0}: positive values clamp to 0.
            let tol = if symmetric && bits == 1 { x.abs() + s } else { s / 2.0 + 1e-5 };
            prop_assert!((x - y).abs() <= tol * 1.0001, "elem {i}: {x} vs {y} (scale {s})");
        }
        // The compressed forms without inflating: packed codes, and int8 for symmetric.
        prop_assert_eq!(b.packed().unwrap().len(), (vals.len() * bits as usize).div_ceil(8));
        if symmetric {
            let q = b.int8(&shape).unwrap().expect("symmetric codes fit i8");
            for (i, (&qi, &y)) in q.values.iter().zip(&dec).enumerate() {
                prop_assert_eq!(qi as f32 * q.scales[if per_channel { i / inner.max(1) } else { 0 }], y);
            }
        }
    }

    #[test]
    fn codebook_roundtrips(n in 0usize..500, bits in 1u8..=8, huffman: bool, seed: u64) {
        let vals: Vec<f32> = (0..n).map(|i| ((i as u64 * 7919 + seed) % 1000) as f32 / 100.0).collect();
        let cb = Codebook::linear(&vals, bits).unwrap();
        let cb = Codebook { indices: cb.indices.restored(huffman).unwrap(), ..cb };
        let back = roundtrip(&Encoding::Codebook(cb.clone()), &[n]);
        let dec = back.decode_f32(&[n]).unwrap();
        let idx = cb.indices().unwrap();
        for i in 0..n {
            prop_assert_eq!(dec[i], cb.centroids[idx[i] as usize]);
            let best = cb.centroids.iter().map(|c| (c - vals[i]).abs()).fold(f32::INFINITY, f32::min);
            prop_assert_eq!((dec[i] - vals[i]).abs(), best, "nearest centroid");
        }
    }

    #[test]
    fn sparse_roundtrips_at_any_sparsity_and_gap_width(
        n in 0usize..3000,
        density in prop_oneof![Just(0.0f64), Just(1.0), Just(0.001), 0.0f64..1.0],
        gap_bits in 1u8..=8, huffman: bool, quantized: bool, rows in 1usize..5, seed: u64,
    ) {
        let n = n / rows * rows;
        let dense: Vec<f32> = (0..n)
            .map(|i| {
                let h = (i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
                if (h as f64 / (1u64 << 53) as f64) < density { (h % 199) as f32 - 99.5 } else { 0.0 }
            })
            .collect();
        let s = Sparse::encode(&dense, gap_bits, huffman, |v| {
            if quantized {
                // Affine codes represent 0 exactly (fillers stay 0).
                Ok(Encoding::BitPacked(BitPacked::quantize(v, &[v.len()], 8, QuantAxis::PerTensor, Scheme::Affine)?))
            } else {
                Ok(raw(v))
            }
        })
        .unwrap();
        let kept = dense.iter().filter(|&&v| v != 0.0).count();
        prop_assert!(s.entries() >= kept);
        prop_assert!(n <= (s.entries() + 1) << gap_bits, "fillers bound the element count");
        let shape = [rows, n / rows];
        let back = roundtrip(&Encoding::Sparse(s.clone()), &shape);
        let dec = back.decode_f32(&shape).unwrap();
        if quantized {
            let scale = match &*s.values { Encoding::BitPacked(b) => b.scales[0], _ => unreachable!() };
            for (x, y) in dense.iter().zip(&dec) {
                prop_assert!((x - y).abs() <= scale / 2.0 + 1e-4);
                prop_assert!(*x != 0.0 || *y == 0.0, "zeros stay zero");
            }
        } else {
            prop_assert_eq!(&dec, &dense);
            // CSR view without inflating: what the sparse kernels multiply.
            let csr = s.csr(&shape).unwrap();
            prop_assert_eq!(csr, Csr::from_dense(&dense, rows, n / rows));
        }
    }

    #[test]
    fn huffman_roundtrips_and_is_never_larger_than_fixed_width_plus_table(
        n in 0usize..2000, bits in 1u8..=8, skew in 0u32..6, seed: u64,
    ) {
        let codes: Vec<u8> = (0..n)
            .map(|i| {
                let h = ((i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as u32;
                // Geometric-ish: small codes are more frequent for larger skew.
                ((h >> (skew * (h % 4))) % (1u32 << bits)) as u8
            })
            .collect();
        let h = Codes::huffman(&codes, bits).unwrap();
        let p = Codes::packed(&codes, bits).unwrap();
        prop_assert_eq!(h.decode().unwrap(), codes.clone());
        prop_assert!(h.encoded_size() <= p.encoded_size() + huffman::table_len(bits) + 8);
        let (_, data) = huffman::encode(&codes, bits);
        prop_assert!(data.len() <= (n * bits as usize).div_ceil(8));
        let mut out = Vec::new();
        h.write(&mut out);
        prop_assert_eq!(Codes::read(&mut Cursor::new(&out), "x").unwrap(), h);
    }
}

#[test]
fn huffman_beats_fixed_width_on_skewed_codes() {
    let codes: Vec<u8> = (0..10_000).map(|i| if i % 10 == 0 { (i % 16) as u8 } else { 0 }).collect();
    let h = Codes::huffman(&codes, 4).unwrap();
    let p = Codes::packed(&codes, 4).unwrap();
    assert!(h.encoded_size() * 2 < p.encoded_size(), "{} vs {}", h.encoded_size(), p.encoded_size());
}

#[test]
fn long_gaps_insert_fillers() {
    let mut dense = vec![0f32; 100];
    dense[0] = 1.0;
    dense[50] = 2.0;
    let s = Sparse::encode(&dense, 2, false, |v| Ok(raw(v))).unwrap();
    // Positions 0, 4, 8, ..., 48, 50, then fillers every 4 to within 4 of the end.
    let pos = s.positions(100).unwrap();
    assert_eq!(&pos[..3], &[0, 4, 8]);
    assert!(pos.contains(&50) && *pos.last().unwrap() >= 96);
    assert_eq!(Encoding::Sparse(s).decode_f32(&[100]).unwrap(), dense);
}

#[test]
fn decoding_rejects_codes_out_of_range() {
    // Index 3 with 3 centroids.
    let cb = Codebook { centroids: vec![0.0, 1.0, 2.0], indices: Codes::packed(&[0, 1, 3], 2).unwrap() };
    let e = Encoding::Codebook(cb).validate(&[3]).unwrap_err().to_string();
    assert_eq!(e, "index 3 at element 2 is past the 3 centroids");
    // A gap that walks past the shape.
    let s = Sparse { gaps: Codes::packed(&[2, 3], 2).unwrap(), values: Box::new(raw(&[1.0, 2.0])) };
    let e = Encoding::Sparse(s).validate(&[5]).unwrap_err().to_string();
    assert_eq!(e, "entry 1 is at position 6, past the 5 elements");
    // A tail longer than a gap spans (the bound that keeps a small file from asking for a
    // huge tensor).
    let s = Sparse { gaps: Codes::packed(&[0], 1).unwrap(), values: Box::new(raw(&[1.0])) };
    assert!(Encoding::Sparse(s.clone()).validate(&[2]).is_ok());
    assert!(Encoding::Sparse(s).validate(&[1 << 40]).is_err());
    // Values count must match the entries.
    let s = Sparse { gaps: Codes::packed(&[0, 0], 1).unwrap(), values: Box::new(raw(&[1.0])) };
    assert!(Encoding::Sparse(s).validate(&[2]).is_err());
}
