//! Run-time instruction-set dispatch.
//!
//! Every kernel has a `pub` entry taking an explicit [`Isa`]; callers normally pass
//! [`Isa::detect()`] (the best level this CPU runs, capped by `SHRINK_ISA`), tests pass each of
//! [`Isa::available()`] in turn. A kernel given a level the CPU cannot run falls back to the best
//! level below it ([`Isa::effective`]), so no entry can execute an unsupported instruction.
use std::fmt;
use std::sync::OnceLock;

/// An instruction-set level a kernel can be compiled for, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// AVX-512 F/BW/VL plus VNNI (`vpdpbusd`: u8 × i8 dot products of 4 into i32).
    Avx512Vnni,
    /// AVX-512 F/BW/VL without VNNI (int8 widened to i16, `vpmaddwd`).
    Avx512,
    /// AVX2 + FMA (int8 widened to i16, `vpmaddwd`).
    Avx2,
    /// AArch64 Advanced SIMD (compile-checked here; no ARM machine runs the tests).
    Neon,
    /// Portable Rust, the reference every other path must match.
    Scalar,
}

/// Environment variable that caps the level [`Isa::detect`] returns:
/// `scalar`, `avx2`, `avx512` or `avx512vnni` (also `neon` on AArch64).
pub const ISA_ENV: &str = "SHRINK_ISA";

impl Isa {
    /// All levels, best first.
    pub const ALL: [Isa; 5] = [Isa::Avx512Vnni, Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Scalar];

    /// The lower-case name used by `SHRINK_ISA` and in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512Vnni => "avx512vnni",
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Neon => "neon",
            Isa::Scalar => "scalar",
        }
    }

    /// Parses a `SHRINK_ISA` value (case-insensitive); `None` if it names no level.
    pub fn from_name(s: &str) -> Option<Isa> {
        let s = s.trim().to_ascii_lowercase();
        Isa::ALL.into_iter().find(|i| i.name() == s)
    }

    /// Whether this CPU can execute code compiled for this level.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.is_supported()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => Isa::Avx512.is_supported() && is_x86_feature_detected!("avx512vnni"),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every level this CPU can run, best first (always ends with [`Isa::Scalar`]).
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_supported()).collect()
    }

    /// The best level this CPU runs, capped by `SHRINK_ISA` when it names a level (an unknown
    /// value is ignored). Detected once per process.
    pub fn detect() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| Isa::detect_from(std::env::var(ISA_ENV).ok().as_deref()))
    }

    /// What [`Isa::detect`] returns when `SHRINK_ISA` holds `cap` (`None`: unset).
    pub fn detect_from(cap: Option<&str>) -> Isa {
        Isa::best_up_to(cap.and_then(Isa::from_name).unwrap_or(Isa::Avx512Vnni))
    }

    /// The best level this CPU runs that is not above `cap`.
    pub fn best_up_to(cap: Isa) -> Isa {
        cap.effective()
    }

    /// This level if the CPU runs it, else the best supported level below it (at worst
    /// [`Isa::Scalar`]), in the order of [`Isa::ALL`].
    pub fn effective(self) -> Isa {
        let start = Isa::ALL.iter().position(|&i| i == self).unwrap_or(Isa::ALL.len() - 1);
        Isa::ALL[start..].iter().copied().find(|i| i.is_supported()).unwrap_or(Isa::Scalar)
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for isa in Isa::ALL {
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
        }
        assert_eq!(Isa::from_name(" AVX2 "), Some(Isa::Avx2));
        assert_eq!(Isa::from_name("sse9"), None);
    }

    #[test]
    fn available_ends_with_scalar_and_is_supported() {
        let av = Isa::available();
        assert_eq!(av.last(), Some(&Isa::Scalar));
        assert!(av.iter().all(|i| i.is_supported()));
        assert!(av.contains(&Isa::detect()));
    }

    #[test]
    fn env_value_caps_the_level() {
        assert_eq!(Isa::detect_from(Some("scalar")), Isa::Scalar);
        assert_eq!(Isa::detect_from(Some("nonsense")), Isa::detect_from(None));
        if Isa::Avx2.is_supported() {
            assert_eq!(Isa::detect_from(Some("avx2")), Isa::Avx2);
        }
        if Isa::Avx512.is_supported() {
            assert_eq!(Isa::detect_from(Some("AVX512")), Isa::Avx512);
        }
    }

    #[test]
    fn cap_never_goes_above() {
        assert_eq!(Isa::best_up_to(Isa::Scalar), Isa::Scalar);
        let a2 = Isa::best_up_to(Isa::Avx2);
        assert!(a2 == Isa::Avx2 || a2 == Isa::Neon || a2 == Isa::Scalar);
        assert!(Isa::best_up_to(Isa::Avx512Vnni).is_supported());
    }
}
