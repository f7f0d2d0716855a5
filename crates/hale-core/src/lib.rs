//! Hale's shared vocabulary: the ids, the actor behind a request and what it may ask for.
//!
//! This crate does no I/O and knows nothing of FHIR's definitions, HTTP or storage; every
//! other crate speaks in these types.
//!
//! ```
//! use hale_core::{RecordId, Scopes};
//! let record = RecordId::parse("example-1").unwrap();
//! let scopes = Scopes::parse("patient/Observation.rs patient/*.read").unwrap();
//! assert!(scopes.allows("Observation", hale_core::Interaction::Search));
//! assert!(!scopes.allows("Observation", hale_core::Interaction::Create));
//! assert_eq!(record.as_str(), "example-1");
//! ```

mod actor;
mod hex;
mod identity;
mod ids;
mod scope;

pub use actor::{Actor, RequestContext};
pub use hex::hex;
pub use identity::{AccountKind, AuthStrength, VerificationLevel};
pub use ids::{IdError, RecordId, ResourceId};
pub use scope::{Interaction, ScopeError, ScopeLevel, Scopes};
