//! The application error: what went wrong, in terms the web layer maps to HTTP once.

use hale_fhir::{Issue, IssueCode};
use hale_store::StoreError;

/// Why a use case did not complete. Messages carry ids, paths and counts, never content.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No credentials, or credentials that do not verify.
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    /// Authenticated, but the scopes do not allow this.
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// Not found, or not visible to this actor (the two are indistinguishable by design).
    #[error("{resource_type}/{id} is not known")]
    NotFound {
        /// The type asked for.
        resource_type: String,
        /// The id asked for.
        id: String,
    },
    /// The resource was deleted.
    #[error("{resource_type}/{id} has been deleted")]
    Gone {
        /// Its type.
        resource_type: String,
        /// Its id.
        id: String,
    },
    /// The request could not be understood (malformed JSON, wrong type, bad id, too big).
    #[error("bad request: {}", .0.first().map(|i| i.message.as_str()).unwrap_or(""))]
    BadRequest(Vec<Issue>),
    /// The content is not a valid FHIR R4 resource.
    #[error("invalid resource: {} issue(s)", .0.len())]
    Invalid(Vec<Issue>),
    /// Understood and valid, but refused by a rule (a reference into another record,
    /// definitional resources, no record to place it in).
    #[error("unprocessable: {}", .0.first().map(|i| i.message.as_str()).unwrap_or(""))]
    Unprocessable(Vec<Issue>),
    /// `If-Match` did not match, or a conditional operation matched more than one.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// A conflicting write (the id exists already, or a concurrent writer won).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request body is larger than the server accepts.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The operation or parameter is not supported.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// A form was refused for a reason the person can fix (the web layer words it).
    #[error("refused: {}", .0.id())]
    Rejected(crate::accounts::FormProblem),
    /// Too many failed attempts: try again after this many seconds.
    #[error("too many attempts; try again in {0} s")]
    Throttled(u64),
    /// Something failed inside; logged with the request id.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// A 400 with one issue.
    pub fn bad_request(path: &str, message: impl Into<String>) -> Self {
        AppError::BadRequest(vec![Issue::error(IssueCode::Invalid, path, message)])
    }

    /// A 422 with one issue.
    pub fn unprocessable(path: &str, message: impl Into<String>) -> Self {
        AppError::Unprocessable(vec![Issue::error(IssueCode::BusinessRule, path, message)])
    }

    /// The issues to report in an OperationOutcome.
    pub fn issues(&self) -> Vec<Issue> {
        match self {
            AppError::BadRequest(i) | AppError::Invalid(i) | AppError::Unprocessable(i) => {
                i.clone()
            }
            other => {
                let code = match other {
                    AppError::Unauthenticated(_) => IssueCode::Login,
                    AppError::Forbidden(_) => IssueCode::Forbidden,
                    AppError::NotFound { .. } => IssueCode::NotFound,
                    AppError::Gone { .. } => IssueCode::Deleted,
                    AppError::PreconditionFailed(_) | AppError::Conflict(_) => IssueCode::Conflict,
                    AppError::NotSupported(_) => IssueCode::NotSupported,
                    AppError::TooLarge(_) | AppError::Throttled(_) => IssueCode::Throttled,
                    AppError::Rejected(_) => IssueCode::Invalid,
                    _ => IssueCode::Exception,
                };
                let message = match other {
                    // Internal detail stays in the log; the caller gets the request id.
                    AppError::Internal(_) => "an internal error occurred".to_owned(),
                    e => e.to_string(),
                };
                vec![Issue::error(code, "", message)]
            }
        }
    }
}

impl From<hale_core::IdError> for AppError {
    fn from(e: hale_core::IdError) -> Self {
        AppError::bad_request("id", e.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { resource_type, id } => AppError::NotFound { resource_type, id },
            StoreError::VersionConflict {
                resource_type,
                id,
                expected,
                actual,
            } => {
                if expected == "absent" {
                    AppError::Conflict(format!("{resource_type}/{id} already exists ({actual})"))
                } else {
                    AppError::PreconditionFailed(format!(
                        "{resource_type}/{id} is at version {actual}, not {expected}"
                    ))
                }
            }
            StoreError::OtherRecord { resource_type, id } => {
                AppError::Conflict(format!("the id {resource_type}/{id} is not available"))
            }
            StoreError::NoRecord(r) => {
                AppError::unprocessable("", format!("record {r} does not exist"))
            }
            StoreError::Id(e) => AppError::bad_request("", e.to_string()),
            other => AppError::Internal(other.to_string()),
        }
    }
}
