//! SMART on FHIR scopes, v2 (`patient/Observation.rs`) and v1 (`patient/*.read`).
//!
//! See SMART App Launch 2.0 §3 "Scopes and Launch Context". Only clinical-data scopes
//! matter here; `openid`, `launch/patient` and the like are accepted and ignored.

/// A FHIR interaction, as SMART v2 names them: create, read, update, delete, search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    /// `c`
    Create,
    /// `r` (read, vread, history)
    Read,
    /// `u` (update, patch)
    Update,
    /// `d`
    Delete,
    /// `s`
    Search,
}

/// Whose data a scope reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeLevel {
    /// `patient/`: the one record in the token's context.
    Patient,
    /// `user/`: what the signed-in user may see (treated as `patient/` until proxies exist).
    User,
    /// `system/`: any record, for operators and organisations' systems.
    System,
}

/// A scope string that is not a valid SMART scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// The scope has a clinical-data shape but something in it is wrong.
    #[error("scope '{0}' is not a SMART scope (expected e.g. patient/Observation.rs)")]
    Malformed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    level: ScopeLevel,
    resource_type: Option<String>,
    interactions: Vec<Interaction>,
}

/// The clinical-data scopes of a token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes {
    grants: Vec<Grant>,
    text: String,
}

impl Scopes {
    /// Parses a space-separated scope string.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        let mut grants = Vec::new();
        for scope in s.split_whitespace() {
            let Some((level, rest)) = scope.split_once('/') else {
                continue; // openid, fhirUser, offline_access, launch: not data scopes
            };
            let level = match level {
                "patient" => ScopeLevel::Patient,
                "user" => ScopeLevel::User,
                "system" => ScopeLevel::System,
                "launch" => continue,
                _ => return Err(ScopeError::Malformed(scope.to_owned())),
            };
            let (resource, perms) = rest
                .split_once('.')
                .ok_or_else(|| ScopeError::Malformed(scope.to_owned()))?;
            // SMART v2 allows a query after '?' to narrow a scope; we refuse rather than widen.
            if perms.contains('?') {
                return Err(ScopeError::Malformed(scope.to_owned()));
            }
            let interactions = match perms {
                "read" => vec![Interaction::Read, Interaction::Search],
                "write" => vec![
                    Interaction::Create,
                    Interaction::Update,
                    Interaction::Delete,
                ],
                "*" => vec![
                    Interaction::Create,
                    Interaction::Read,
                    Interaction::Update,
                    Interaction::Delete,
                    Interaction::Search,
                ],
                v2 => parse_v2(v2).ok_or_else(|| ScopeError::Malformed(scope.to_owned()))?,
            };
            let resource_type = match resource {
                "*" => None,
                t if !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphabetic()) => {
                    Some(t.to_owned())
                }
                _ => return Err(ScopeError::Malformed(scope.to_owned())),
            };
            grants.push(Grant {
                level,
                resource_type,
                interactions,
            });
        }
        Ok(Self {
            grants,
            text: s.split_whitespace().collect::<Vec<_>>().join(" "),
        })
    }

    /// The resource types the scopes name, or `None` if any scope is for every type (`*`).
    pub fn resource_types(&self) -> Option<Vec<String>> {
        let mut types = Vec::new();
        for g in &self.grants {
            let t = g.resource_type.clone()?;
            if !types.contains(&t) {
                types.push(t);
            }
        }
        Some(types)
    }

    /// Whether any scope allows creating, updating or deleting.
    pub fn writes(&self) -> bool {
        self.grants.iter().any(|g| {
            g.interactions.iter().any(|i| {
                matches!(
                    i,
                    Interaction::Create | Interaction::Update | Interaction::Delete
                )
            })
        })
    }

    /// Whether there is at least one data scope and every one is `patient/` (what an app a
    /// person connects may ask for).
    pub fn patient_only(&self) -> bool {
        !self.grants.is_empty() && self.grants.iter().all(|g| g.level == ScopeLevel::Patient)
    }

    /// Whether any scope allows `interaction` on `resource_type`.
    pub fn allows(&self, resource_type: &str, interaction: Interaction) -> bool {
        self.grants.iter().any(|g| {
            g.interactions.contains(&interaction)
                && g.resource_type
                    .as_deref()
                    .is_none_or(|t| t == resource_type)
        })
    }

    /// Whether any scope is at system level (reaches every record).
    pub fn has_system_level(&self) -> bool {
        self.grants.iter().any(|g| g.level == ScopeLevel::System)
    }

    /// The normalised scope string.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// SMART v2 permissions: a non-empty subsequence of `cruds`, in that order.
fn parse_v2(perms: &str) -> Option<Vec<Interaction>> {
    let mut out = Vec::new();
    let mut rest = "cruds";
    for c in perms.chars() {
        let at = rest.find(c)?;
        rest = &rest[at + 1..];
        out.push(match c {
            'c' => Interaction::Create,
            'r' => Interaction::Read,
            'u' => Interaction::Update,
            'd' => Interaction::Delete,
            's' => Interaction::Search,
            _ => return None,
        });
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_scopes_allow_exactly_their_letters() {
        let s = Scopes::parse("patient/Observation.rs").unwrap();
        assert!(s.allows("Observation", Interaction::Read));
        assert!(s.allows("Observation", Interaction::Search));
        assert!(!s.allows("Observation", Interaction::Update));
        assert!(!s.allows("Condition", Interaction::Read));
    }

    #[test]
    fn v1_wildcard_scopes_are_understood() {
        let s = Scopes::parse("openid patient/*.read").unwrap();
        assert!(s.allows("Condition", Interaction::Read));
        assert!(!s.allows("Condition", Interaction::Create));
        assert!(!s.has_system_level());
    }

    #[test]
    fn out_of_order_or_unknown_permissions_are_refused() {
        assert!(Scopes::parse("patient/*.sr").is_err());
        assert!(Scopes::parse("patient/*.x").is_err());
        assert!(Scopes::parse("patient/Observation.rs?category=vital-signs").is_err());
        assert!(Scopes::parse("admin/*.read").is_err());
    }
}
