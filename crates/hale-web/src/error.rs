//! The one place that maps application errors to HTTP: FHIR routes answer with an
//! OperationOutcome. 5xx are logged with the request id (never with content).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hale_app::AppError;
use hale_fhir::OperationOutcome;

/// An error on a FHIR route, with the request id that correlates it with the log.
#[derive(Debug)]
pub struct ApiError {
    /// What went wrong.
    pub error: AppError,
    /// The request's id.
    pub request_id: String,
}

/// The HTTP status for an application error (FHIR R4 §3.1.0.4 and §3.1.0.8).
pub fn status_of(e: &AppError) -> StatusCode {
    match e {
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::NotFound { .. } => StatusCode::NOT_FOUND,
        AppError::Gone { .. } => StatusCode::GONE,
        AppError::BadRequest(_) | AppError::Invalid(_) | AppError::NotSupported(_) => {
            StatusCode::BAD_REQUEST
        }
        AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        AppError::Rejected(_) => StatusCode::BAD_REQUEST,
        AppError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A status line for a batch entry's `response.status`.
pub fn status_line(e: &AppError) -> String {
    let s = status_of(e);
    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.error);
        if status.is_server_error() {
            tracing::error!(request_id = %self.request_id, error = %self.error, "request failed");
        }
        let body =
            serde_json::to_vec(&OperationOutcome::new(&self.error.issues())).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::fhir::FHIR_JSON),
        );
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            headers.insert("x-request-id", v);
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
