//! `--shard I/N`: one slice of a sweep's grid, for sweeps that run on several machines.
//!
//! A command enumerates the cells of its whole grid in one fixed order; cell `k` belongs to
//! shard `k mod N`. A shard computes its cells (and the baseline every cell is measured
//! against), journals them in its own `--out-dir` and writes no tables or figures:
//! `shrink merge` joins the shard directories and writes what the whole run would have written.
//! The shard spec is part of the run's parameters, so a shard directory is never taken for a
//! whole run (nor for another shard).
use anyhow::{bail, Result};

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `I/N` (0 <= I < N); errors name `--shard`.
    pub fn parse(s: &str) -> Result<Shard> {
        let usage = || format!("--shard must be I/N with 0 <= I < N (e.g. 0/4), got `{s}`");
        let Some((i, n)) = s.split_once('/') else { bail!(usage()) };
        let (Ok(index), Ok(count)) = (i.trim().parse::<usize>(), n.trim().parse::<usize>()) else {
            bail!(usage())
        };
        if count == 0 || index >= count {
            bail!(usage());
        }
        Ok(Shard { index, count })
    }

    /// Parses an optional `--shard` flag.
    pub fn parse_flag(s: Option<&str>) -> Result<Option<Shard>> {
        s.map(Shard::parse).transpose()
    }

    /// Whether the cell at position `k` of the grid's fixed order belongs to this shard.
    pub fn owns(&self, k: usize) -> bool {
        k % self.count == self.index
    }

    /// The shard that owns cell `k` in a grid split `count` ways.
    pub fn owner(k: usize, count: usize) -> usize {
        k % count
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Whether the cell at position `k` is computed by this run (every cell when not sharded).
pub fn mine(shard: Option<Shard>, k: usize) -> bool {
    shard.is_none_or(|s| s.owns(k))
}

/// Prints how a finished shard is merged (stderr).
pub fn report_done(shard: Shard, cells: usize, out_dir: &std::path::Path) {
    eprintln!(
        "shard {shard}: {cells} cells journaled in {}; when all {} shards are done, join them with \
         `shrink merge DIR... --out-dir OUT`",
        out_dir.display(),
        shard.count
    );
}

/// The flags every resumable, shardable command (sweep quant/prune, sensitivity, mixed) shares.
#[derive(clap::Args, Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct RunFlags {
    /// Write into an --out-dir that holds another run's results or other files: the previous
    /// run's files are removed (other files are kept) and the run starts over.
    #[arg(long)]
    #[serde(skip)]
    pub force: bool,
    /// Compute only shard I of N (0-based): cell k of the full grid goes to shard k mod N. The
    /// shard journals its cells in --out-dir and writes no results (mixed: the bit allocation
    /// waits for the merge); `shrink merge` joins the shards.
    #[arg(long, value_name = "I/N", allow_hyphen_values = true)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_with_the_flag_name() {
        assert_eq!(Shard::parse("0/3").unwrap(), Shard { index: 0, count: 3 });
        assert_eq!(Shard::parse("2/3").unwrap().to_string(), "2/3");
        for bad in ["3/3", "0/0", "1", "-1/3", "a/b", "1/", "/2", "1/2/3"] {
            let e = format!("{:#}", Shard::parse(bad).unwrap_err());
            assert!(e.starts_with("--shard") && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn every_cell_has_exactly_one_shard_whatever_n() {
        for n in 1..6 {
            for k in 0..20 {
                let owners: Vec<usize> = (0..n).filter(|&i| Shard { index: i, count: n }.owns(k)).collect();
                assert_eq!(owners, vec![Shard::owner(k, n)]);
            }
        }
        assert!(mine(None, 7));
    }
}
