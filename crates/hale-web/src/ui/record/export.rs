//! "Download your record": everything in it that the person can see, as one FHIR Bundle
//! they can keep or take to another service (the right of access and to portability).
//! Both factors again first, as for any sensitive action; recorded in "Who has looked".

use super::*;

#[derive(Template)]
#[template(path = "export.html")]
struct ExportPage {
    chrome: Chrome,
    csrf: String,
    /// How many readings from apps and devices the record holds (a second download).
    readings: i64,
}

/// `GET /record/export`.
pub(crate) async fn export_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let (who, _) = person(&state, &v).await?;
    crate::ui::account::recent(&state, &who, "export")?;
    let checked = who.clone();
    let (_, readings) = call(&state, &v, move |app| app.record_overview(&checked)).await?;
    let page = ExportPage {
        chrome: signed_in_chrome(&state, &v, &who, v.lang.t("export-title")),
        csrf: crate::ui::session_csrf(&state, &v),
        readings,
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// `POST /record/export`: the download.
pub(crate) async fn export(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    crate::ui::account::form(&state, &v, v.session_key.as_deref(), &body)?;
    crate::ui::account::recent(&state, &who, "export")?;
    let checked = who.clone();
    let all = call(&state, &v, move |app| app.export_record(&checked, &ctx)).await?;
    let bundle = hale_app::export_bundle(&all, Some(&state.link_base()));
    let body = serde_json::to_vec_pretty(&bundle).unwrap_or_default();
    Ok(download(
        axum::body::Body::from(body),
        "application/fhir+json",
        "hale-record",
        "json",
    ))
}

/// A download to keep: `hale-NAME-YYYY-MM-DD.EXT`, never cached.
fn download(body: axum::body::Body, content_type: &str, name: &str, ext: &str) -> Response {
    let day = hale_fhir::date::format_instant(hale_fhir::date::now_millis());
    let mut r = body.into_response();
    let headers = r.headers_mut();
    for (header, value) in [
        (axum::http::header::CONTENT_TYPE, content_type.to_owned()),
        (
            axum::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}-{}.{ext}\"", &day[..10]),
        ),
        (axum::http::header::CACHE_CONTROL, "no-store".to_owned()),
    ] {
        if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
            headers.insert(header, value);
        }
    }
    r
}

/// `POST /record/export/readings`: every reading from apps and devices, as CSV, streamed as
/// it is read (ten years of a watch is millions of rows). The first page decides between
/// the download and an error page; a failure after that cuts the transfer short, so a
/// browser reports a failed download rather than keeping a partial file as whole.
pub(crate) async fn export_readings(
    AxumState(state): AxumState<State>,
    v: Visitor,
    body: Bytes,
) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    crate::ui::account::form(&state, &v, v.session_key.as_deref(), &body)?;
    crate::ui::account::recent(&state, &who, "export")?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, AppError>>(4);
    let app = state.app.clone();
    let request_id = v.request_id.clone();
    tokio::task::spawn_blocking(move || {
        let mut send = |chunk| tx.blocking_send(Ok(chunk)).is_ok();
        if let Err(e) = app.export_readings(&who, &ctx, &mut send) {
            tracing::error!(request_id = %request_id, error = %e, "the readings download failed");
            let _ = tx.blocking_send(Err(e));
        }
    });
    let first = match rx.recv().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(e)) => return Err(crate::ui::account::app_error_page(&v, e)),
        None => return Err(error_page(&v, StatusCode::INTERNAL_SERVER_ERROR)),
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Some(Ok(chunk)) => Some((Ok(chunk), rx)),
            Some(Err(_)) => Some((Err(std::io::Error::other("the download stopped")), rx)),
            None => None,
        }
    });
    let chunks = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(first) }),
        rest,
    );
    Ok(download(
        axum::body::Body::from_stream(chunks),
        "text/csv; charset=utf-8",
        "hale-readings",
        "csv",
    ))
}
