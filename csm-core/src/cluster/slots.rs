//! Which instance should refresh which station: stations fall into a fixed number of slots by
//! a hash of their id, and each slot goes to the live instance that scores highest for it
//! (rendezvous hashing), so a change of membership moves only the slots of the instance that
//! came or went.
//!
//! Both hashes are FNV-1a (64-bit), written here so that every instance and every version
//! computes the same answer.

use crate::model::StationId;

/// Slots the stations are divided into.
pub const SLOTS: u16 = 1024;

/// FNV-1a over the bytes given, in order.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// A 64-bit finaliser (from SplitMix64), so that near keys give far scores.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The slot of a station.
pub fn slot_of(id: &StationId) -> u16 {
    (mix(fnv1a(&[id.as_str().as_bytes()])) % u64::from(SLOTS)) as u16
}

/// The instance among `members` that should hold `slot`: the one with the highest score (ties,
/// which need equal hashes, go to the smaller id). `None` without members.
pub fn owner_of(slot: u16, members: &[String]) -> Option<&str> {
    members
        .iter()
        .map(|member| {
            let score = mix(fnv1a(&[member.as_bytes(), b"/", &slot.to_be_bytes()]));
            (score, member.as_str())
        })
        .max_by(|(a, a_id), (b, b_id)| a.cmp(b).then_with(|| b_id.cmp(a_id)))
        .map(|(_, member)| member)
}

/// [`owner_of`] of every slot for one list of members, worked out once: members change
/// rarely, and an instance asks about every slot at each beat.
#[derive(Debug)]
pub struct Owners {
    members: Vec<String>,
    /// The index in `members` of each slot's owner.
    owner: Vec<u16>,
}

impl Owners {
    /// The owners of every slot among `members`.
    pub fn among(members: &[String]) -> Self {
        let owner = (0..SLOTS)
            .map(|slot| {
                owner_of(slot, members)
                    .and_then(|id| members.iter().position(|m| m == id))
                    .map_or(u16::MAX, |index| index as u16)
            })
            .collect();
        Self {
            members: members.to_vec(),
            owner,
        }
    }

    /// Whether these are the owners among `members`.
    pub fn are_among(&self, members: &[String]) -> bool {
        self.members == members
    }

    /// The owner of `slot`, as [`owner_of`] says.
    pub fn of(&self, slot: u16) -> Option<&str> {
        self.members.get(self.index_of(slot)?).map(String::as_str)
    }

    /// The members, in the order [`Owners::index_of`] counts them.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// Where the owner of `slot` is among [`Owners::members`].
    pub fn index_of(&self, slot: u16) -> Option<usize> {
        let index = usize::from(*self.owner.get(usize::from(slot))?);
        (index < self.members.len()).then_some(index)
    }

    /// The slots `member` owns, in order (none when it is not a member).
    pub fn slots_of(&self, member: &str) -> impl Iterator<Item = u16> + '_ {
        let index = self.members.iter().position(|m| m == member);
        (0..SLOTS).filter(move |slot| index.is_some() && self.index_of(*slot) == index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("instance-{i}")).collect()
    }

    fn share(members: &[String]) -> std::collections::HashMap<&str, usize> {
        let mut counts = std::collections::HashMap::new();
        for slot in 0..SLOTS {
            *counts.entry(owner_of(slot, members).unwrap()).or_default() += 1;
        }
        counts
    }

    #[test]
    fn every_instance_gets_about_its_share() {
        for n in [2, 3, 5, 8] {
            let members = members(n);
            let counts = share(&members);
            let fair = f64::from(SLOTS) / n as f64;
            for (member, count) in counts {
                let off = (count as f64 - fair).abs() / fair;
                assert!(
                    off < 0.25,
                    "{member} holds {count} of {SLOTS} slots among {n}"
                );
            }
        }
    }

    #[test]
    fn a_change_of_membership_moves_only_the_slots_it_must() {
        let three = members(3);
        let two = &three[..2];
        for slot in 0..SLOTS {
            let before = owner_of(slot, &three).unwrap();
            let after = owner_of(slot, two).unwrap();
            if before != "instance-2" {
                assert_eq!(before, after, "slot {slot} moved between survivors");
            }
        }
        // The order members are listed in does not matter.
        let reversed: Vec<String> = three.iter().rev().cloned().collect();
        for slot in 0..SLOTS {
            assert_eq!(owner_of(slot, &three), owner_of(slot, &reversed));
        }
        assert_eq!(owner_of(0, &[]), None);
        let owners = Owners::among(&three);
        assert!(owners.are_among(&three) && !owners.are_among(two));
        for slot in 0..SLOTS {
            assert_eq!(owners.of(slot), owner_of(slot, &three));
            let index = owners.index_of(slot).unwrap();
            assert_eq!(
                Some(owners.members()[index].as_str()),
                owner_of(slot, &three)
            );
        }
        for member in &three {
            let listed: Vec<u16> = owners.slots_of(member).collect();
            let expected: Vec<u16> = (0..SLOTS)
                .filter(|slot| owner_of(*slot, &three) == Some(member))
                .collect();
            assert_eq!(listed, expected, "{member}");
        }
        assert_eq!(owners.slots_of("a stranger").count(), 0);
        assert_eq!(Owners::among(&[]).of(0), None);
        assert_eq!(Owners::among(&[]).index_of(0), None);
    }

    #[test]
    fn stations_spread_over_the_slots_and_keep_theirs() {
        let mut used = std::collections::HashSet::new();
        for n in 0..10_000 {
            used.insert(slot_of(&StationId::parse(&format!("S{n:05}")).unwrap()));
        }
        assert!(
            used.len() > 1000,
            "10,000 stations fell in {} slots",
            used.len()
        );
        // Fixed values: every instance and version must agree.
        let id = StationId::parse("S0001").unwrap();
        assert_eq!(slot_of(&id), slot_of(&StationId::parse("S0001").unwrap()));
        assert_eq!(fnv1a(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
    }
}
