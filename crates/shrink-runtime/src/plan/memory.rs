//! Memory planning: each arena value lives from the step that writes it to the last step that
//! reads it; values are assigned to reusable slots greedily, largest first, a slot taking a
//! value when none of the values already in it is alive at the same time.

/// A value to place: its size in floats and its live interval `[first, last]` in steps
/// (inclusive at both ends, so a step's inputs and outputs never share a slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub len: usize,
    pub first: usize,
    pub last: usize,
}

impl Interval {
    fn overlaps(&self, o: &Interval) -> bool {
        self.first <= o.last && o.first <= self.last
    }
}

/// Slot of every interval, and the size of every slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub slot_of: Vec<usize>,
    pub slot_len: Vec<usize>,
}

/// Greedy by size: intervals in decreasing size order, each into the first slot whose
/// intervals it does not overlap (a new slot when none), so a slot's size is its first value's.
pub fn assign(values: &[Interval]) -> Assignment {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(values[i].len), values[i].first));
    let mut slots: Vec<Vec<usize>> = Vec::new();
    let mut slot_len = Vec::new();
    let mut slot_of = vec![usize::MAX; values.len()];
    for i in order {
        let free = slots.iter().position(|held| held.iter().all(|&j| !values[i].overlaps(&values[j])));
        let s = free.unwrap_or_else(|| {
            slots.push(Vec::new());
            slot_len.push(values[i].len);
            slots.len() - 1
        });
        slots[s].push(i);
        slot_of[i] = s;
    }
    Assignment { slot_of, slot_len }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_reuses_two_slots_and_overlaps_never_share() {
        // A chain a→b→c→d: each value is read by the next step only.
        let chain: Vec<Interval> =
            (0..4).map(|i| Interval { len: 100 - i * 10, first: i, last: i + 1 }).collect();
        let a = assign(&chain);
        assert_eq!(a.slot_len.len(), 2);
        assert_eq!(a.slot_len, vec![100, 90]);
        for i in 0..4 {
            for j in 0..4 {
                if i != j && chain[i].overlaps(&chain[j]) {
                    assert_ne!(a.slot_of[i], a.slot_of[j]);
                }
            }
        }
        // A value alive throughout (a skip connection) takes a slot of its own.
        let mut skip = chain.clone();
        skip.push(Interval { len: 5, first: 0, last: 4 });
        assert_eq!(assign(&skip).slot_len.len(), 3);
    }
}
