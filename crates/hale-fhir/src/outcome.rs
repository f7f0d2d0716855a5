//! OperationOutcome: how FHIR says what went wrong (FHIR R4 §2.37).

use serde::Serialize;

/// How bad an issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The request cannot be completed.
    Error,
    /// Completed, but worth knowing.
    Warning,
    /// For information.
    Information,
}

/// The `issue.code` value set (`http://hl7.org/fhir/issue-type`), the ones Hale uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IssueCode {
    /// Content invalid against the specification or a profile.
    Invalid,
    /// A structural issue: unknown element, wrong JSON shape.
    Structure,
    /// A required element is missing.
    Required,
    /// A value is not valid for its type.
    Value,
    /// A code is not in its required value set.
    CodeInvalid,
    /// The resource or record does not exist (or is not yours to see).
    NotFound,
    /// A version conflict or duplicate.
    Conflict,
    /// The request is understood but refused by a business rule.
    BusinessRule,
    /// Not supported by this server.
    NotSupported,
    /// Authentication is missing or failed.
    Login,
    /// The actor is authenticated but not allowed.
    Forbidden,
    /// The request is too expensive (e.g. an unindexed search).
    TooCostly,
    /// Processing failed.
    Processing,
    /// An unexpected internal error.
    Exception,
    /// The resource has been deleted.
    Deleted,
    /// Too many requests or too large a request.
    Throttled,
    /// No problem: for information only.
    Informational,
}

/// One problem, with the element it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// How bad.
    pub severity: Severity,
    /// What kind of problem.
    pub code: IssueCode,
    /// The FHIRPath-like location (`Observation.component[1].code`), empty if none.
    pub path: String,
    /// A plain description. Never contains health data: paths, codes of rules and counts only.
    pub message: String,
}

impl Issue {
    /// An error at `path`.
    pub fn error(code: IssueCode, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            path: path.into(),
            message: message.into(),
        }
    }
}

/// An OperationOutcome resource, as written to the wire.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationOutcome {
    resource_type: &'static str,
    issue: Vec<WireIssue>,
}

#[derive(Debug, Clone, Serialize)]
struct WireIssue {
    severity: Severity,
    code: IssueCode,
    diagnostics: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    expression: Vec<String>,
}

impl OperationOutcome {
    /// An outcome listing `issues`.
    pub fn new(issues: &[Issue]) -> Self {
        Self {
            resource_type: "OperationOutcome",
            issue: issues
                .iter()
                .map(|i| WireIssue {
                    severity: i.severity,
                    code: i.code,
                    diagnostics: i.message.clone(),
                    expression: if i.path.is_empty() {
                        Vec::new()
                    } else {
                        vec![i.path.clone()]
                    },
                })
                .collect(),
        }
    }

    /// An all-clear outcome (as `$validate` answers for a valid resource).
    pub fn ok(message: &str) -> Self {
        Self {
            resource_type: "OperationOutcome",
            issue: vec![WireIssue {
                severity: Severity::Information,
                code: IssueCode::Informational,
                diagnostics: message.to_owned(),
                expression: Vec::new(),
            }],
        }
    }
}
