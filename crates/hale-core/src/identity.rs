//! Who an account is and how sure we are of it: the vocabulary of the NHS identity
//! verification and authentication standard (DAPB3051), as NHS login uses it.

use std::fmt;

/// What kind of account this is (DESIGN.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// The person a record is about; owns that record.
    Person,
    /// A carer or family member acting for someone within a grant.
    Proxy,
    /// A care professional, belonging to an organisation.
    Professional,
    /// Runs the service.
    Operator,
}

impl AccountKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Person => "person",
            AccountKind::Proxy => "proxy",
            AccountKind::Professional => "professional",
            AccountKind::Operator => "operator",
        }
    }

    /// From storage; `None` for anything unknown.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "person" => AccountKind::Person,
            "proxy" => AccountKind::Proxy,
            "professional" => AccountKind::Professional,
            "operator" => AccountKind::Operator,
            _ => return None,
        })
    }
}

/// How sure we are who someone is: NHS login's identity verification levels. Ordered, so
/// `level >= VerificationLevel::P9` reads as the rule it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum VerificationLevel {
    /// Not verified: an email address and a password. May keep their own entries.
    P0,
    /// Basic: details checked against the NHS record, no photo ID.
    P5,
    /// High: photo ID checked (by NHS login, or in person by an operator). Needed to see
    /// what health and care sources wrote.
    P9,
}

impl VerificationLevel {
    /// As NHS login writes it (`P0`, `P5`, `P9`).
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationLevel::P0 => "P0",
            VerificationLevel::P5 => "P5",
            VerificationLevel::P9 => "P9",
        }
    }

    /// From `P0`, `P5` or `P9`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "P0" => VerificationLevel::P0,
            "P5" => VerificationLevel::P5,
            "P9" => VerificationLevel::P9,
            _ => return None,
        })
    }
}

impl fmt::Display for VerificationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How strongly this request's session signed in. Health data is shown only at
/// [`AuthStrength::TwoFactor`] (DAPB3051: a second factor before any health data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AuthStrength {
    /// A password alone, or a token whose sign-in strength Hale cannot see.
    OneFactor,
    /// A password and a second factor (TOTP, passkey or a recovery code).
    TwoFactor,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_levels_order_from_unverified_to_high() {
        assert!(VerificationLevel::P0 < VerificationLevel::P5);
        assert!(VerificationLevel::P5 < VerificationLevel::P9);
        for level in [
            VerificationLevel::P0,
            VerificationLevel::P5,
            VerificationLevel::P9,
        ] {
            assert_eq!(VerificationLevel::parse(level.as_str()), Some(level));
        }
        assert_eq!(VerificationLevel::parse("p9"), None);
    }

    #[test]
    fn account_kinds_round_trip_and_unknown_kinds_are_refused() {
        for kind in [
            AccountKind::Person,
            AccountKind::Proxy,
            AccountKind::Professional,
            AccountKind::Operator,
        ] {
            assert_eq!(AccountKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AccountKind::parse("admin"), None);
    }
}
