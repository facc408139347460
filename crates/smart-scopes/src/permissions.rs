//! The permission bit set shared by the v1 (`read`/`write`/`*`) and v2 (`cruds`) grammars.

use std::fmt;
use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign};

/// A set of SMART v2 permissions: any subset of `c`, `r`, `u`, `d`, `s`.
///
/// v1 permissions map onto the same set: `read` = `rs`, `write` = `cud`, `*` = `cruds`.
///
/// ```
/// use smart_scopes::Permissions;
///
/// let p = Permissions::from_v1("Read").unwrap();
/// assert_eq!(p, Permissions::READ | Permissions::SEARCH);
/// assert_eq!(p.to_v2_string(), "rs");
/// assert_eq!(Permissions::from_v2("cud").unwrap().to_v1(), Some("write"));
/// assert_eq!(Permissions::from_v2("sr"), None); // out of order
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions(u8);

/// Letters in their canonical v2 order, with their bits.
const LETTERS: [(char, Permissions); 5] = [
    ('c', Permissions::CREATE),
    ('r', Permissions::READ),
    ('u', Permissions::UPDATE),
    ('d', Permissions::DELETE),
    ('s', Permissions::SEARCH),
];

impl Permissions {
    /// The empty set (never produced by parsing; the grammar requires at least one letter).
    pub const NONE: Permissions = Permissions(0);
    /// `c`: type-level create.
    pub const CREATE: Permissions = Permissions(1);
    /// `r`: read, vread, instance history.
    pub const READ: Permissions = Permissions(1 << 1);
    /// `u`: update (including upsert) and patch.
    pub const UPDATE: Permissions = Permissions(1 << 2);
    /// `d`: delete.
    pub const DELETE: Permissions = Permissions(1 << 3);
    /// `s`: type search, type history, system search, system history.
    pub const SEARCH: Permissions = Permissions(1 << 4);
    /// `cruds`: every permission (v1 `*`).
    pub const ALL: Permissions = Permissions(0b1_1111);

    /// v1 `read` = `rs`.
    const V1_READ: Permissions = Permissions(Self::READ.0 | Self::SEARCH.0);
    /// v1 `write` = `cud`.
    const V1_WRITE: Permissions = Permissions(Self::CREATE.0 | Self::UPDATE.0 | Self::DELETE.0);

    /// True when every permission in `other` is also in `self` (so `contains(NONE)` is always true).
    pub const fn contains(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }

    /// The permissions in either set.
    pub const fn union(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }

    /// The permissions in both sets.
    pub const fn intersection(self, other: Permissions) -> Permissions {
        Permissions(self.0 & other.0)
    }

    /// True for the empty set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The v2 letters in canonical order, for example `"rs"` or `"cruds"` (empty for [`Permissions::NONE`]).
    pub fn to_v2_string(self) -> String {
        LETTERS
            .iter()
            .filter(|(_, bit)| self.contains(*bit))
            .map(|(letter, _)| *letter)
            .collect()
    }

    /// Parses v2 letters: a non-empty, in-order subset of `cruds` without repeats.
    /// Letters are matched case-insensitively (`RS` is accepted). Returns `None` otherwise.
    pub fn from_v2(s: &str) -> Option<Permissions> {
        if s.is_empty() {
            return None;
        }
        let mut next = 0usize; // index into LETTERS of the next allowed letter
        let mut out = Permissions::NONE;
        for ch in s.chars() {
            let lower = ch.to_ascii_lowercase();
            let pos = LETTERS[next..].iter().position(|(l, _)| *l == lower)?;
            out |= LETTERS[next + pos].1;
            next += pos + 1;
        }
        Some(out)
    }

    /// Parses a v1 permission: `read`, `write` or `*`, case-insensitively.
    pub fn from_v1(s: &str) -> Option<Permissions> {
        if s.eq_ignore_ascii_case("read") {
            Some(Self::V1_READ)
        } else if s.eq_ignore_ascii_case("write") {
            Some(Self::V1_WRITE)
        } else if s == "*" {
            Some(Self::ALL)
        } else {
            None
        }
    }

    /// The exact v1 spelling of this set, if there is one: `rs` → `"read"`, `cud` → `"write"`,
    /// `cruds` → `"*"`. Every other set (for example `r` alone) has no exact v1 form and gives `None`.
    pub fn to_v1(self) -> Option<&'static str> {
        if self == Self::V1_READ {
            Some("read")
        } else if self == Self::V1_WRITE {
            Some("write")
        } else if self == Self::ALL {
            Some("*")
        } else {
            None
        }
    }
}

impl BitOr for Permissions {
    type Output = Permissions;
    fn bitor(self, rhs: Permissions) -> Permissions {
        self.union(rhs)
    }
}

impl BitOrAssign for Permissions {
    fn bitor_assign(&mut self, rhs: Permissions) {
        *self = self.union(rhs);
    }
}

impl BitAnd for Permissions {
    type Output = Permissions;
    fn bitand(self, rhs: Permissions) -> Permissions {
        self.intersection(rhs)
    }
}

impl BitAndAssign for Permissions {
    fn bitand_assign(&mut self, rhs: Permissions) {
        *self = self.intersection(rhs);
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permissions({})", self.to_v2_string())
    }
}

/// Formats the v2 letters, as [`Permissions::to_v2_string`].
impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_v2_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_strings_round_trip_for_all_non_empty_sets() {
        for bits in 1u8..=31 {
            let p = Permissions(bits);
            let s = p.to_v2_string();
            assert_eq!(Permissions::from_v2(&s), Some(p), "{s}");
            assert_eq!(Permissions::from_v2(&s.to_uppercase()), Some(p), "{s}");
        }
    }

    #[test]
    fn v2_rejects_out_of_order_repeats_and_junk() {
        for bad in ["", "sr", "rr", "dus", "x", "crudsx", "read", "*", "r s"] {
            assert_eq!(Permissions::from_v2(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn v1_mapping() {
        assert_eq!(
            Permissions::from_v1("read"),
            Some(Permissions::READ | Permissions::SEARCH)
        );
        assert_eq!(
            Permissions::from_v1("WRITE"),
            Some(Permissions::CREATE | Permissions::UPDATE | Permissions::DELETE)
        );
        assert_eq!(Permissions::from_v1("*"), Some(Permissions::ALL));
        assert_eq!(Permissions::from_v1("rs"), None);
        assert_eq!(Permissions::from_v1("reads"), None);
        assert_eq!(
            Permissions::from_v2("rs").and_then(|p| p.to_v1()),
            Some("read")
        );
        assert_eq!(
            Permissions::from_v2("cruds").and_then(|p| p.to_v1()),
            Some("*")
        );
        assert_eq!(Permissions::READ.to_v1(), None);
        assert_eq!((Permissions::CREATE | Permissions::READ).to_v1(), None);
        assert_eq!(Permissions::NONE.to_v1(), None);
    }

    #[test]
    fn set_operations() {
        let rs = Permissions::READ | Permissions::SEARCH;
        assert!(rs.contains(Permissions::READ));
        assert!(!rs.contains(Permissions::CREATE));
        assert!(rs.contains(Permissions::NONE));
        assert!(Permissions::ALL.contains(rs));
        assert_eq!(rs.intersection(Permissions::READ), Permissions::READ);
        assert!(rs.intersection(Permissions::CREATE).is_empty());
        assert_eq!(rs & Permissions::ALL, rs);
        let mut p = Permissions::NONE;
        p |= Permissions::DELETE;
        assert_eq!(p.to_v2_string(), "d");
        assert_eq!(format!("{rs:?}"), "Permissions(rs)");
        assert_eq!(rs.to_string(), "rs");
    }
}
