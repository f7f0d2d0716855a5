//! FHIR R4 for Hale, driven by the official definitions rather than code per type.
//!
//! - [`Definitions`]: the compact form of the official R4 StructureDefinitions, required
//!   value sets, SearchParameters and the Patient compartment, built by
//!   `scripts/fhir-definitions.py` and embedded in the binary.
//! - [`validate`]: structure, cardinality, types, primitive formats, required bindings and
//!   the UK Core NHS number check, with an element path for every problem.
//! - [`index`]: the search-index values of a resource, from the SearchParameter paths.
//! - [`search`]: a search request parsed into a typed query the store can run.
//!
//! This crate does no I/O and holds no state beyond the embedded definitions.
//!
//! ```
//! let defs = hale_fhir::Definitions::r4();
//! let obs = serde_json::json!({"resourceType": "Observation", "status": "final",
//!     "code": {"text": "Weight"}, "valueQuantity": {"value": 72.5, "unit": "kg"}});
//! assert!(hale_fhir::validate(defs, &obs).is_ok());
//! let bad = serde_json::json!({"resourceType": "Observation", "status": "nearly",
//!     "code": {"text": "Weight"}});
//! let issues = hale_fhir::validate(defs, &bad).unwrap_err();
//! assert_eq!(issues[0].path, "Observation.status");
//! ```

pub mod date;
mod definitions;
pub mod index;
pub mod nhs_number;
mod outcome;
pub mod search;
pub mod uk_time;
mod validate;

pub use definitions::{Definitions, ElementDef, SearchParamDef, SearchParamType, SearchPath};
pub use outcome::{Issue, IssueCode, OperationOutcome, Severity};
pub use validate::validate;

/// The most deeply nested JSON Hale accepts; deeper input is refused before parsing
/// finishes walking it, so it cannot exhaust the stack.
pub const MAX_DEPTH: usize = 100;
