//! FHIR R4 REST at `/fhir` (FHIR R4 §3.1.0, "RESTful API").

mod bundle;
mod capability;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hale_app::{App, AppError, EntryStatus, StoredResource, parse_etag};
use hale_core::RequestContext;
use hale_fhir::OperationOutcome;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::State;
use crate::error::{ApiError, status_line};
use bundle::{Bundle, Entry, Link};
use capability::CapabilityStatement;

/// The FHIR JSON media type.
pub(crate) const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route("/metadata", get(metadata))
        .route("/", axum::routing::post(bundle_post))
        .route(
            "/{rtype}",
            get(search_get).post(type_post).put(conditional_put),
        )
        .route(
            "/{rtype}/{id}",
            get(id_get)
                .put(update)
                .patch(patch)
                .delete(delete)
                .post(type_operation),
        )
        .route("/{rtype}/{id}/{op}", get(instance_get))
        .route("/{rtype}/{id}/_history/{vid}", get(vread))
}

/// One request's context: who, which request, the base URL for links.
struct Call {
    ctx: RequestContext,
    base: String,
    strict: bool,
    minimal: bool,
}

/// A request id: this process's random prefix and a counter. Unique across processes,
/// carries no personal data, and costs no system call (a UUID per request did).
pub(crate) fn new_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
    format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn base_url(state: &State, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_url {
        return format!("{}/fhir", url.trim_end_matches('/'));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}/fhir")
}

/// Runs an App call on a blocking thread (the store is synchronous).
async fn blocking<T: Send + 'static>(
    state: &State,
    request_id: &str,
    f: impl FnOnce(&App) -> Result<T, AppError> + Send + 'static,
) -> Result<T, ApiError> {
    let app = state.app.clone();
    tokio::task::spawn_blocking(move || f(&app))
        .await
        .map_err(|e| AppError::Internal(format!("task failed: {e}")))
        .and_then(|r| r)
        .map_err(|error| ApiError {
            error,
            request_id: request_id.to_owned(),
        })
}

/// Runs a bounded App call (a read of one resource by primary key): on the request's own
/// task where the store says that is cheap (embedded SQLite: tens of microseconds, less than
/// a hand-off to a blocking thread and back), otherwise through [`blocking`].
async fn bounded<T: Send + 'static>(
    state: &State,
    request_id: &str,
    f: impl FnOnce(&App) -> Result<T, AppError> + Send + 'static,
) -> Result<T, ApiError> {
    if state.app.inline_reads() {
        return f(&state.app).map_err(|error| ApiError {
            error,
            request_id: request_id.to_owned(),
        });
    }
    blocking(state, request_id, f).await
}

async fn authenticate(state: &State, headers: &HeaderMap) -> Result<Call, ApiError> {
    let request_id = new_request_id();
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    // Signature and expiry only: no I/O, so no blocking thread.
    let ctx = state
        .app
        .authenticate(auth.as_deref(), &request_id)
        .map_err(|error| ApiError {
            error,
            request_id: request_id.clone(),
        })?;
    let prefer = headers
        .get("prefer")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    Ok(Call {
        ctx,
        base: base_url(state, headers),
        strict: prefer.contains("handling=strict"),
        minimal: prefer.contains("return=minimal"),
    })
}

impl Call {
    fn fail(&self, error: AppError) -> ApiError {
        ApiError {
            error,
            request_id: self.ctx.request_id.clone(),
        }
    }

    async fn json_body(&self, body: Body) -> Result<Value, ApiError> {
        let bytes = read_body(body).await.map_err(|e| self.fail(e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            // serde_json's messages give line and column, never the content.
            self.fail(AppError::bad_request("", format!("malformed JSON: {e}")))
        })
    }
}

/// Reads a body of at most [`MAX_BODY`](crate::MAX_BODY) bytes. A larger one is refused,
/// but read on (and discarded, up to four times the limit) before the answer goes out, so
/// the client finishes sending and sees the 413 instead of a reset connection (what nginx
/// calls a lingering close).
async fn read_body(body: Body) -> Result<Bytes, AppError> {
    use axum::body::HttpBody as _;
    use futures_util::StreamExt;
    // Sized from Content-Length where it is given (within the limit): growing a buffer of a
    // few hundred kilobytes by doubling copies it several times over.
    let expected = body.size_hint().exact().unwrap_or(0);
    let mut buf: Vec<u8> =
        Vec::with_capacity(usize::try_from(expected).unwrap_or(0).min(crate::MAX_BODY));
    let mut stream = body.into_data_stream();
    let mut seen = 0usize;
    let mut over = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| AppError::bad_request("", "the body could not be read"))?;
        seen += chunk.len();
        if !over && buf.len() + chunk.len() > crate::MAX_BODY {
            over = true;
            buf = Vec::new();
        }
        if !over {
            buf.extend_from_slice(&chunk);
        }
        if seen > 4 * crate::MAX_BODY {
            break;
        }
    }
    if over {
        return Err(AppError::TooLarge(format!(
            "the body is larger than {} bytes",
            crate::MAX_BODY
        )));
    }
    Ok(Bytes::from(buf))
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    json_response_sized(status, body, 1024)
}

/// A Bundle, written into a buffer sized for it at the start: a whole record is megabytes,
/// and a buffer grown by doubling copied it over and over.
fn bundle_response(status: StatusCode, bundle: &Bundle) -> Response {
    json_response_sized(status, bundle, bundle.size_hint())
}

fn json_response_sized<T: Serialize>(status: StatusCode, body: &T, capacity: usize) -> Response {
    let mut bytes = Vec::with_capacity(capacity);
    if serde_json::to_writer(&mut bytes, body).is_err() {
        bytes.clear();
    }
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON))],
        bytes,
    )
        .into_response()
}

/// A single resource with its version headers (FHIR R4 §3.1.0.6).
fn resource_response(
    call: &Call,
    status: StatusCode,
    r: &StoredResource,
    location: bool,
) -> Response {
    let mut response = if call.minimal && status != StatusCode::OK {
        status.into_response()
    } else {
        json_response(status, &r.resource)
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("W/\"{}\"", r.version)) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&hale_fhir::date::format_http_date(r.last_updated)) {
        h.insert(header::LAST_MODIFIED, v);
    }
    if location
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{}/{}/{}/_history/{}",
            call.base, r.resource_type, r.id, r.version
        ))
    {
        h.insert(header::LOCATION, v);
    }
    response
}

/// 201 with `Location` for something new, 200 for an update or an existing match.
fn written_response(call: &Call, written: &hale_app::Written) -> Response {
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    resource_response(call, status, &written.resource, written.created)
}

fn if_match(call: &Call, headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    match headers.get(header::IF_MATCH).and_then(|h| h.to_str().ok()) {
        None => Ok(None),
        Some(v) => parse_etag(v).map(Some).ok_or_else(|| {
            call.fail(AppError::bad_request(
                "If-Match",
                "expected W/\"<version>\"",
            ))
        }),
    }
}

fn query_pairs(q: Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

async fn metadata(AxumState(state): AxumState<State>) -> Response {
    json_response(
        StatusCode::OK,
        &CapabilityStatement::generate(state.app.definitions()),
    )
}

async fn search_get(
    AxumState(state): AxumState<State>,
    Path(rtype): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let call = authenticate(&state, &headers).await?;
    search(&state, call, rtype, query_pairs(q)).await
}

async fn search(
    state: &State,
    call: Call,
    rtype: String,
    pairs: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    let ctx = call.ctx.clone();
    let strict = call.strict;
    let rt = rtype.clone();
    let (query, page) = blocking(state, &call.ctx.request_id, move |app| {
        app.search(&ctx, &rt, &pairs, strict)
    })
    .await?;
    let link_for = |offset: usize| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &query.used {
            if k != "_offset" && k != "_count" {
                s.append_pair(k, v);
            }
        }
        s.append_pair("_count", &query.count.to_string());
        s.append_pair("_offset", &offset.to_string());
        format!("{}/{rtype}?{}", call.base, s.finish())
    };
    let mut links = vec![Link::new("self", link_for(query.offset))];
    let more = match page.total {
        Some(t) => (query.offset + page.matches.len()) < usize::try_from(t).unwrap_or(0),
        None => page.matches.len() == query.count,
    };
    if more && !query.summary_count {
        links.push(Link::new("next", link_for(query.offset + query.count)));
    }
    if query.offset > 0 {
        links.push(Link::new(
            "previous",
            link_for(query.offset.saturating_sub(query.count)),
        ));
    }
    let values: Vec<Box<RawValue>> = page
        .matches
        .iter()
        .filter_map(|m| m.resource.clone())
        .map(|raw| match &query.elements {
            // Only _elements needs the content parsed; otherwise the stored text goes out.
            Some(keep) => serde_json::from_str(raw.get())
                .ok()
                .and_then(|v| serde_json::value::to_raw_value(&subset(v, keep)).ok())
                .unwrap_or(raw),
            None => raw,
        })
        .collect();
    let bundle = Bundle::searchset(
        &call.base,
        page.total,
        links,
        values,
        &page.matches,
        page.included,
    );
    Ok(bundle_response(StatusCode::OK, &bundle))
}

/// `_elements`: the listed top-level elements plus the mandatory ones, tagged SUBSETTED
/// (FHIR R4 §3.1.1.5.9).
fn subset(v: Value, keep: &[String]) -> Value {
    let Value::Object(obj) = v else {
        return v;
    };
    let mut out: serde_json::Map<String, Value> = obj
        .into_iter()
        .filter(|(k, _)| {
            k == "resourceType" || k == "id" || k == "meta" || keep.iter().any(|x| x == k)
        })
        .collect();
    let meta = out
        .entry("meta")
        .or_insert_with(|| Value::Object(Default::default()));
    if let Value::Object(m) = meta {
        let tags = m.entry("tag").or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(t) = tags {
            t.push(serde_json::json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}));
        }
    }
    Value::Object(out)
}

async fn type_post(
    AxumState(state): AxumState<State>,
    Path(rtype): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = authenticate(&state, &headers).await?;
    let body = call.json_body(body).await?;
    let if_none_exist = headers
        .get("if-none-exist")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let ctx = call.ctx.clone();
    let written = blocking(&state, &call.ctx.request_id, move |app| {
        app.create(&ctx, &rtype, body, if_none_exist.as_deref())
    })
    .await?;
    Ok(written_response(&call, &written))
}

/// `POST [type]/$validate` and `POST [type]/_search`.
async fn type_operation(
    AxumState(state): AxumState<State>,
    Path((rtype, op)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = authenticate(&state, &headers).await?;
    match op.as_str() {
        "$validate" => {
            let body = call.json_body(body).await?;
            // A Parameters wrapper carries the resource in parameter "resource".
            let resource = match body.get("resourceType").and_then(Value::as_str) {
                Some("Parameters") if rtype != "Parameters" => body
                    .get("parameter")
                    .and_then(Value::as_array)
                    .and_then(|ps| {
                        ps.iter()
                            .find(|p| p.get("name").and_then(Value::as_str) == Some("resource"))
                    })
                    .and_then(|p| p.get("resource"))
                    .cloned()
                    .unwrap_or(Value::Null),
                _ => body,
            };
            let ctx = call.ctx.clone();
            blocking(&state, &call.ctx.request_id, move |app| {
                app.validate(&ctx, &rtype, &resource)
            })
            .await?;
            Ok(json_response(
                StatusCode::OK,
                &OperationOutcome::ok("the resource is valid"),
            ))
        }
        "$add-samples" if rtype == "Observation" => {
            let body = call.json_body(body).await?;
            let ctx = call.ctx.clone();
            let summary = blocking(&state, &call.ctx.request_id, move |app| {
                app.add_samples(&ctx, &body)
            })
            .await?;
            Ok(json_response(StatusCode::OK, &samples_outcome(&summary)))
        }
        "_search" => {
            let bytes = read_body(body).await.map_err(|e| call.fail(e))?;
            let pairs = form_urlencoded::parse(&bytes).into_owned().collect();
            search(&state, call, rtype, pairs).await
        }
        _ => Err(call.fail(AppError::NotSupported(format!(
            "POST to {rtype}/{op} is not supported"
        )))),
    }
}

/// What `$add-samples` did, as a Parameters resource: counts, and each reason for rejection.
fn samples_outcome(s: &hale_app::ImportSummary) -> Value {
    let mut parameters = vec![
        serde_json::json!({"name": "received", "valueInteger": s.report.records}),
        serde_json::json!({"name": "added", "valueInteger": s.added}),
        serde_json::json!({"name": "duplicates", "valueInteger": s.duplicates()}),
    ];
    for (why, n) in &s.report.rejected {
        parameters.push(serde_json::json!({"name": "rejected", "part": [
            {"name": "reason", "valueString": why.describe()},
            {"name": "count", "valueInteger": n},
        ]}));
    }
    serde_json::json!({"resourceType": "Parameters", "parameter": parameters})
}

async fn conditional_put(
    AxumState(state): AxumState<State>,
    Path(rtype): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = authenticate(&state, &headers).await?;
    let body = call.json_body(body).await?;
    let expected = if_match(&call, &headers)?;
    let ctx = call.ctx.clone();
    let query = q.unwrap_or_default();
    let written = blocking(&state, &call.ctx.request_id, move |app| {
        app.conditional_update(&ctx, &rtype, &query, body, expected)
    })
    .await?;
    Ok(written_response(&call, &written))
}

/// `GET [type]/[id]`, and `GET [type]/_history`.
async fn id_get(
    AxumState(state): AxumState<State>,
    Path((rtype, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let call = authenticate(&state, &headers).await?;
    let ctx = call.ctx.clone();
    if id == "_history" {
        return history(&state, call, rtype, None, query_pairs(q)).await;
    }
    let r = bounded(&state, &call.ctx.request_id, move |app| {
        app.read(&ctx, &rtype, &id)
    })
    .await?;
    Ok(resource_response(&call, StatusCode::OK, &r, false))
}

async fn history(
    state: &State,
    call: Call,
    rtype: String,
    id: Option<String>,
    pairs: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    let mut count = hale_fhir::search::DEFAULT_COUNT;
    let mut since = None;
    for (k, v) in &pairs {
        match k.as_str() {
            "_count" => {
                count = v.parse().map_err(|_| {
                    call.fail(AppError::bad_request(
                        "_count",
                        "_count must be a whole number",
                    ))
                })?
            }
            "_since" => {
                since = Some(
                    hale_fhir::date::parse_range(v)
                        .ok_or_else(|| {
                            call.fail(AppError::bad_request("_since", "_since must be an instant"))
                        })?
                        .lo,
                )
            }
            _ => {}
        }
    }
    let ctx = call.ctx.clone();
    let (rt, i) = (rtype.clone(), id.clone());
    let versions = blocking(state, &call.ctx.request_id, move |app| {
        app.history(&ctx, &rt, i.as_deref(), count, since)
    })
    .await?;
    let self_link = match id {
        Some(id) => format!("{}/{rtype}/{id}/_history", call.base),
        None => format!("{}/{rtype}/_history", call.base),
    };
    Ok(bundle_response(
        StatusCode::OK,
        &Bundle::history(&call.base, versions, self_link),
    ))
}

/// `GET [type]/[id]/_history` and `GET Patient/[id]/$everything`.
async fn instance_get(
    AxumState(state): AxumState<State>,
    Path((rtype, id, op)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let call = authenticate(&state, &headers).await?;
    match (rtype.as_str(), op.as_str()) {
        (_, "_history") => history(&state, call, rtype, Some(id), query_pairs(q)).await,
        ("Patient", "$everything") => {
            let ctx = call.ctx.clone();
            let all = blocking(&state, &call.ctx.request_id, move |app| {
                app.everything(&ctx, &id)
            })
            .await?;
            Ok(bundle_response(
                StatusCode::OK,
                &Bundle::everything(&call.base, all),
            ))
        }
        _ => Err(call.fail(AppError::NotSupported(format!(
            "GET {rtype}/[id]/{op} is not supported"
        )))),
    }
}

async fn vread(
    AxumState(state): AxumState<State>,
    Path((rtype, id, vid)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let call = authenticate(&state, &headers).await?;
    let ctx = call.ctx.clone();
    let r = bounded(&state, &call.ctx.request_id, move |app| {
        app.vread(&ctx, &rtype, &id, &vid)
    })
    .await?;
    Ok(resource_response(&call, StatusCode::OK, &r, false))
}

async fn update(
    AxumState(state): AxumState<State>,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = authenticate(&state, &headers).await?;
    let body = call.json_body(body).await?;
    let expected = if_match(&call, &headers)?;
    let ctx = call.ctx.clone();
    let written = blocking(&state, &call.ctx.request_id, move |app| {
        app.update(&ctx, &rtype, &id, body, expected)
    })
    .await?;
    Ok(written_response(&call, &written))
}

async fn patch(
    AxumState(state): AxumState<State>,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = authenticate(&state, &headers).await?;
    let body = call.json_body(body).await?;
    let expected = if_match(&call, &headers)?;
    let ctx = call.ctx.clone();
    let written = blocking(&state, &call.ctx.request_id, move |app| {
        app.patch(&ctx, &rtype, &id, body, expected)
    })
    .await?;
    Ok(resource_response(
        &call,
        StatusCode::OK,
        &written.resource,
        false,
    ))
}

async fn delete(
    AxumState(state): AxumState<State>,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let call = authenticate(&state, &headers).await?;
    let expected = if_match(&call, &headers)?;
    let ctx = call.ctx.clone();
    blocking(&state, &call.ctx.request_id, move |app| {
        app.delete(&ctx, &rtype, &id, expected)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn bundle_post(
    AxumState(state): AxumState<State>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = authenticate(&state, &headers).await?;
    let body = call.json_body(body).await?;
    let ctx = call.ctx.clone();
    let (kind, results) = blocking(&state, &call.ctx.request_id, move |app| {
        app.bundle(&ctx, body)
    })
    .await?;
    let entries = results
        .into_iter()
        .map(|r| match r {
            Ok(e) => {
                let status = match e.status {
                    EntryStatus::Created => "201 Created",
                    EntryStatus::Ok => "200 OK",
                    EntryStatus::Deleted => "204 No Content",
                };
                Entry::written(&call.base, status, e.resource, e.matches)
            }
            Err(err) => Entry::failed(
                status_line(&err),
                serde_json::to_value(OperationOutcome::new(&err.issues())).unwrap_or(Value::Null),
            ),
        })
        .collect();
    let kind = match kind {
        hale_app::BundleKind::Transaction => "transaction-response",
        hale_app::BundleKind::Batch => "batch-response",
    };
    Ok(bundle_response(
        StatusCode::OK,
        &Bundle::response(kind, entries),
    ))
}
