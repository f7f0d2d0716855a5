//! "Download your record": everything in it that the person can see, as one FHIR Bundle
//! they can keep or take to another service (the right of access and to portability).
//! Both factors again first, as for any sensitive action; recorded in "Who has looked".

use super::*;

fn export_page(
    state: &State,
    v: &Visitor,
    who: &hale_app::accounts::SignedIn,
) -> crate::ui::pages::FormPage {
    let l = v.lang;
    let mut page =
        crate::ui::account::signed_in_form(state, v, who, l.t("export-title"), "/record/export");
    page.back = Some(("/record".into(), l.t("record-back")));
    page.paragraphs = vec![l.t("export-body"), l.t("export-care")];
    page.submit = l.t("export-submit");
    page
}

/// `GET /record/export`.
pub(crate) async fn export_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let (who, _) = person(&state, &v).await?;
    crate::ui::account::recent(&state, &who, "export")?;
    Ok(html(StatusCode::OK, export_page(&state, &v, &who).render()))
}

/// `POST /record/export`: the download.
pub(crate) async fn export(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    crate::ui::account::form(&state, &v, v.session_key.as_deref(), &body)?;
    crate::ui::account::recent(&state, &who, "export")?;
    let checked = who.clone();
    let all = call(&state, &v, move |app| app.export_record(&checked, &ctx)).await?;
    let base = state.link_base();
    let entries: Vec<Value> = all
        .iter()
        .filter_map(|r| {
            Some(serde_json::json!({
                "fullUrl": format!("{base}/fhir/{}/{}", r.resource_type, r.id),
                "resource": r.value()?,
            }))
        })
        .collect();
    let bundle = serde_json::json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": hale_fhir::date::format_instant(hale_fhir::date::now_millis()),
        "total": entries.len(),
        "entry": entries,
    });
    let day = hale_fhir::date::format_instant(hale_fhir::date::now_millis());
    let mut r = (
        StatusCode::OK,
        serde_json::to_vec_pretty(&bundle).unwrap_or_default(),
    )
        .into_response();
    let headers = r.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: axum::http::HeaderName, v: String| {
        if let Ok(value) = axum::http::HeaderValue::from_str(&v) {
            h.insert(k, value);
        }
    };
    set(
        headers,
        axum::http::header::CONTENT_TYPE,
        "application/fhir+json".into(),
    );
    set(
        headers,
        axum::http::header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"hale-record-{}.json\"", &day[..10]),
    );
    set(
        headers,
        axum::http::header::CACHE_CONTROL,
        "no-store".into(),
    );
    Ok(r)
}
