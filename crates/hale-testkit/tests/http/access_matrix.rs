//! The authorisation matrix (issue 4 §6): actors × actions × labels over the real server,
//! each answer compared with a small oracle written here from the issue's rules, without the
//! application's code. Zero unexpected allows; what an actor may not see answers exactly as
//! an entry that does not exist (same status, same body).

use std::collections::BTreeSet;

use hale_app::grants::{NewGrant, Role};
use hale_app::labels::PrivacyLabel;
use hale_core::{Actor, AuthStrength, RecordId, RequestContext, Scopes, VerificationLevel};
use hale_testkit::web::{SmtpSink, link_in};
use hale_testkit::{Resp, TestApp};
use serde_json::{Value, json};

use crate::accounts::set_up_person;

const LABELS: [&str; 4] = ["general", "mental-health", "sexual-health", "social-care"];
const TYPES: [&str; 2] = ["Observation", "Condition"];
/// Entries of each label, author and type in each record.
const COPIES: usize = 3;
/// An id no record holds.
const MISSING: &str = "missing-0000-0000";

/// One entry the matrix acts on.
#[derive(Debug, Clone)]
struct Seed {
    record: usize,
    rtype: &'static str,
    id: String,
    label: Option<&'static str>,
    by_person: bool,
    own_patient: bool,
    body: Value,
}

#[derive(Debug)]
enum Kind {
    /// The person or an app of theirs; `observations_only` is a narrow `patient/Observation.rs`.
    Owner {
        record: usize,
        observations_only: bool,
    },
    /// Someone acting under a grant; `live` is false once it has expired or been revoked.
    Grantee {
        record: usize,
        labels: Vec<&'static str>,
        types: Vec<&'static str>,
        write: bool,
        live: bool,
    },
    /// An app the person connected through OAuth: the labels they chose, and its scopes
    /// (`observations_only` for `patient/Observation.rs`, else `patient/*.cruds`).
    App {
        record: usize,
        labels: Vec<&'static str>,
        observations_only: bool,
    },
    /// A health or care organisation's system (SMART Backend Services, `system/*.cruds`)
    /// under the grant the person of `record` gave the organisation.
    Organisation {
        record: usize,
        labels: Vec<&'static str>,
        write: bool,
    },
    System,
    Anonymous,
}

struct Who {
    name: &'static str,
    token: String,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allow,
    /// As if it did not exist.
    Hidden,
    /// Visible, but not this actor's to change: 403.
    Refused,
    /// The token's scopes do not allow the interaction at all: 403.
    ScopeRefused,
    /// No token, or access that has ended: 401.
    Unauthenticated,
}

/// The rules of issue 4, written out again. `writes` is whether the interaction changes the
/// entry; `scope_write` whether the scopes must allow writing (a conditional create).
fn oracle(who: &Who, writes: bool, scope_write: bool, t: &Seed) -> Verdict {
    use Verdict::*;
    match &who.kind {
        Kind::Anonymous => Unauthenticated,
        Kind::Grantee { live: false, .. } => Unauthenticated,
        Kind::System => Allow,
        Kind::Owner {
            record,
            observations_only,
        } => {
            if *observations_only && (t.rtype != "Observation" || writes || scope_write) {
                return ScopeRefused;
            }
            if *record != t.record {
                return Hidden;
            }
            if writes && !t.by_person && !t.own_patient {
                return Refused;
            }
            Allow
        }
        // A connected app acts as the person would, within its scopes and chosen labels.
        Kind::App {
            record,
            labels,
            observations_only,
        } => {
            if *observations_only && (t.rtype != "Observation" || writes || scope_write) {
                return ScopeRefused;
            }
            if *record != t.record {
                return Hidden;
            }
            if !t.own_patient && !t.label.is_some_and(|l| labels.contains(&l)) {
                return Hidden;
            }
            if writes && !t.by_person && !t.own_patient {
                return Refused;
            }
            Allow
        }
        Kind::Grantee {
            record,
            labels,
            types,
            ..
        } => {
            if *record != t.record {
                return Hidden;
            }
            let shared = t.label.is_some_and(|l| labels.contains(&l))
                && (types.is_empty() || types.contains(&t.rtype));
            if !t.own_patient && !shared {
                return Hidden;
            }
            if !writes {
                return Allow;
            }
            // Someone acting for the person adds entries; what is there stays as it is.
            Refused
        }
        // An organisation adds entries under its grant, and changes nothing that is there.
        Kind::Organisation { record, labels, .. } => {
            if *record != t.record {
                return Hidden;
            }
            if !t.own_patient && !t.label.is_some_and(|l| labels.contains(&l)) {
                return Hidden;
            }
            if writes { Refused } else { Allow }
        }
    }
}

/// The per-entry interactions.
#[derive(Debug, Clone, Copy)]
enum Action {
    Read,
    Vread,
    History,
    SearchById,
    CountById,
    Update,
    Patch,
    Delete,
    TransactionDelete,
    BatchRead,
    ConditionalCreate,
}

const ACTIONS: [Action; 11] = [
    Action::Read,
    Action::Vread,
    Action::History,
    Action::SearchById,
    Action::CountById,
    Action::Update,
    Action::Patch,
    Action::Delete,
    Action::TransactionDelete,
    Action::BatchRead,
    Action::ConditionalCreate,
];

fn send(app: &TestApp, who: &Who, action: Action, rtype: &str, id: &str, body: &Value) -> Resp {
    let token = who.token.as_str();
    let stale = [("if-match", "W/\"999\"")];
    match action {
        Action::Read => app.send("GET", &format!("/fhir/{rtype}/{id}"), token, None, &[]),
        Action::Vread => app.send(
            "GET",
            &format!("/fhir/{rtype}/{id}/_history/1"),
            token,
            None,
            &[],
        ),
        Action::History => app.send(
            "GET",
            &format!("/fhir/{rtype}/{id}/_history"),
            token,
            None,
            &[],
        ),
        Action::SearchById => app.send("GET", &format!("/fhir/{rtype}?_id={id}"), token, None, &[]),
        Action::CountById => app.send(
            "GET",
            &format!("/fhir/{rtype}?_id={id}&_summary=count"),
            token,
            None,
            &[],
        ),
        Action::Update => {
            let mut b = body.clone();
            b["id"] = json!(id);
            app.send(
                "PUT",
                &format!("/fhir/{rtype}/{id}"),
                token,
                Some(serde_json::to_vec(&b).unwrap()),
                &stale,
            )
        }
        Action::Patch => app.send(
            "PATCH",
            &format!("/fhir/{rtype}/{id}"),
            token,
            Some(br#"[{"op":"add","path":"/language","value":"en-GB"}]"#.to_vec()),
            &[("content-type", "application/json-patch+json"), stale[0]],
        ),
        Action::Delete => app.send(
            "DELETE",
            &format!("/fhir/{rtype}/{id}"),
            token,
            None,
            &stale,
        ),
        Action::TransactionDelete => {
            let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"request": {"method": "DELETE", "url": format!("{rtype}/{id}"), "ifMatch": "W/\"999\""}}]});
            app.send(
                "POST",
                "/fhir",
                token,
                Some(serde_json::to_vec(&bundle).unwrap()),
                &[],
            )
        }
        Action::BatchRead => {
            let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
                {"request": {"method": "GET", "url": format!("{rtype}/{id}")}}]});
            app.send(
                "POST",
                "/fhir",
                token,
                Some(serde_json::to_vec(&bundle).unwrap()),
                &[],
            )
        }
        Action::ConditionalCreate => app.send(
            "POST",
            &format!("/fhir/{rtype}"),
            token,
            // Not valid, so that a create (when nothing matches) is refused and adds nothing.
            Some(serde_json::to_vec(&json!({"resourceType": rtype, "language": 5})).unwrap()),
            &[("if-none-exist", &format!("_id={id}"))],
        ),
    }
}

/// The status an allowed, refused or unauthenticated interaction answers with (`None`:
/// compare with the same interaction on a missing id instead).
fn status_for(who: &Who, verdict: Verdict, action: Action, t: &Seed) -> Option<u16> {
    use Action::*;
    // An organisation's system searches one person's record at a time: a search (or a
    // conditional create) that names no patient is refused whatever is stored.
    if matches!(who.kind, Kind::Organisation { .. })
        && t.rtype != "Patient"
        && matches!(action, SearchById | CountById | ConditionalCreate)
    {
        return Some(400);
    }
    // Like an operator's, its transaction must name the record it writes into, whatever is
    // stored.
    if matches!(who.kind, Kind::Organisation { .. }) && matches!(action, TransactionDelete) {
        return Some(422);
    }
    Some(match (verdict, action) {
        (Verdict::Unauthenticated, _) => 401,
        // A batch answers for each entry inside.
        (_, BatchRead) => 200,
        (Verdict::ScopeRefused | Verdict::Refused, _) => 403,
        // Ids are unique across records, so an update cannot create a hidden id: it is "not
        // available", in the same words wherever it is hidden (checked below).
        (Verdict::Hidden, Update) => 409,
        (Verdict::Hidden, _) => return None,
        (Verdict::Allow, Read | Vread | History | SearchById | CountById | ConditionalCreate) => {
            200
        }
        (Verdict::Allow, Delete) if t.own_patient => 422,
        // A system's transaction must name the record it writes into.
        (Verdict::Allow, TransactionDelete) if matches!(who.kind, Kind::System) => 422,
        (Verdict::Allow, Update | Patch | Delete | TransactionDelete) => 412,
    })
}

/// What a batch entry's own status starts with.
fn batch_status(verdict: Verdict) -> Option<&'static str> {
    match verdict {
        Verdict::Allow => Some("200"),
        Verdict::ScopeRefused | Verdict::Refused => Some("403"),
        _ => None,
    }
}

/// The oracle for a new entry (labelled `label`, of `rtype`, for Alice's record).
fn oracle_create(who: &Who, rtype: &str, label: &str) -> Verdict {
    use Verdict::*;
    match &who.kind {
        Kind::Anonymous => Unauthenticated,
        Kind::Grantee { live: false, .. } => Unauthenticated,
        Kind::System => Allow,
        Kind::Owner {
            record,
            observations_only,
        } => {
            if *observations_only {
                ScopeRefused
            } else if *record != 0 {
                Hidden
            } else {
                Allow
            }
        }
        Kind::App {
            labels,
            observations_only,
            ..
        } => {
            if *observations_only {
                ScopeRefused
            } else if !labels.contains(&label) {
                Refused
            } else {
                Allow
            }
        }
        Kind::Grantee {
            record,
            labels,
            types,
            write,
            ..
        } => {
            if *record != 0 {
                Hidden
            } else if !write
                || !labels.contains(&label)
                || !(types.is_empty() || types.contains(&rtype))
            {
                Refused
            } else {
                Allow
            }
        }
        Kind::Organisation {
            record,
            labels,
            write,
        } => {
            if *record != 0 {
                Hidden
            } else if !write || !labels.contains(&label) {
                Refused
            } else {
                Allow
            }
        }
    }
}

/// How many entries a search bundle holds, or a batch's inner status.
fn inner(action: Action, r: &Resp) -> Value {
    match action {
        Action::SearchById => json!(r.json["entry"].as_array().map_or(0, Vec::len)),
        Action::CountById => r.json["total"].clone(),
        Action::BatchRead => r.json["entry"][0]["response"]["status"].clone(),
        _ => Value::Null,
    }
}

fn owner_context(record: &RecordId) -> RequestContext {
    RequestContext {
        actor: Actor::Record {
            record: record.clone(),
            scopes: Scopes::parse("patient/*.cruds").unwrap(),
            subject: "account:matrix-owner".into(),
        },
        verification: VerificationLevel::P9,
        strength: AuthStrength::TwoFactor,
        request_id: "matrix".into(),
    }
}

struct GrantSpec {
    labels: Vec<&'static str>,
    types: Vec<&'static str>,
    write: bool,
    end_in_ms: Option<i64>,
    role: Role,
}

/// Gives a grant in `record`, has a new account accept it by the emailed link, and returns
/// a token for it (`patient/*.cruds`: the grant does the narrowing).
fn grant(
    app: &TestApp,
    smtp: &mut SmtpSink,
    record: &str,
    email: &str,
    spec: &GrantSpec,
) -> (String, String) {
    let rec = RecordId::parse(record).unwrap();
    let now = hale_fhir::date::now_millis();
    let new = NewGrant {
        name: "Matrix grantee".into(),
        email: email.into(),
        role: spec.role,
        labels: spec
            .labels
            .iter()
            .map(|l| PrivacyLabel::from_code(l).unwrap())
            .collect(),
        types: spec.types.iter().map(|t| (*t).to_owned()).collect(),
        write: spec.write,
        start: now - 1000,
        end: spec.end_in_ms.map(|ms| now + ms),
    };
    let given = app
        .app()
        .give_access(&owner_context(&rec), &new, &app.base)
        .unwrap()
        .unwrap();
    // (A notice to Alice that the previous grantee accepted may come first.)
    let invitation = loop {
        let mail = smtp.next_email();
        if mail.contains("/shared-with-me/accept?token=") {
            break mail;
        }
    };
    let link = link_in(
        &invitation,
        &format!("{}/shared-with-me/accept?token=", app.base),
    );
    let person = set_up_person(app, smtp, email);
    let page = person.browser.get(&link);
    let done = person.browser.submit_on(
        &page,
        "/shared-with-me/accept",
        &[("token", &page.hidden("token"))],
    );
    assert_eq!(
        done.path(),
        "/shared-with-me?done=accepted",
        "{}",
        done.html
    );
    let token = app.grant_token(record, &given.id, "patient/*.cruds");
    (given.id, token)
}

fn seed(app: &TestApp, records: &[String]) -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (r, record) in records.iter().enumerate() {
        let own = app.token(record, "patient/*.cruds");
        seeds.push(Seed {
            record: r,
            rtype: "Patient",
            id: record.clone(),
            label: Some("general"),
            by_person: false,
            own_patient: true,
            body: app.get(&format!("/fhir/Patient/{record}"), &own).json,
        });
        for rtype in TYPES {
            for label in LABELS {
                for by_person in [true, false] {
                    for copy in 0..COPIES {
                        let mut body = match rtype {
                            "Observation" => {
                                json!({"resourceType": "Observation", "status": "final",
                                "code": {"text": format!("matrix {label} {copy}")}})
                            }
                            _ => json!({"resourceType": "Condition",
                                "code": {"text": format!("matrix {label} {copy}")}}),
                        };
                        body["subject"] = json!({"reference": format!("Patient/{record}")});
                        body["meta"] = json!({"security": [
                            {"system": "urn:hale:privacy-label", "code": label}]});
                        let token = if by_person { &own } else { &app.system_token };
                        let made = app.post(&format!("/fhir/{rtype}"), token, &body);
                        assert_eq!(made.status, 201, "{}", made.json);
                        let stored_label = made.json["meta"]["security"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|c| c["system"] == "urn:hale:privacy-label")
                            .map(|c| c["code"].as_str().unwrap().to_owned());
                        assert_eq!(stored_label.as_deref(), Some(label), "labels are kept");
                        seeds.push(Seed {
                            record: r,
                            rtype,
                            id: made.json["id"].as_str().unwrap().to_owned(),
                            label: Some(label),
                            by_person,
                            own_patient: false,
                            body: made.json,
                        });
                    }
                }
            }
        }
    }
    seeds
}

/// Replaces an id by a placeholder, so two answers about different ids can be compared.
fn normalised(bytes: &[u8], id: &str) -> String {
    String::from_utf8_lossy(bytes).replace(id, "{id}")
}

fn ids_in(bundle: &Value, mode: &str) -> BTreeSet<String> {
    bundle["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|x| x["search"]["mode"] == mode || mode.is_empty())
                .filter_map(|x| x["resource"]["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_actor_sees_and_changes_exactly_what_the_rules_allow() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    // Alice has an account (to connect apps), her identity checked in person (P9).
    let owner = set_up_person(&app, &mut smtp, "matrix-owner@example.org");
    let alice = app.record_of(&owner.email);
    crate::ok(&[
        "admin",
        "person",
        "verify",
        "--data-dir",
        app.config.data_dir.to_str().unwrap(),
        "--record",
        &alice,
        "--level",
        "P9",
        "--evidence",
        "passport, checked in person",
    ]);
    let (bea, _) = app.new_person("Bea");
    let records = vec![alice.clone(), bea.clone()];
    let seeds = seed(&app, &records);

    let all_labels = LABELS.to_vec();
    let full = GrantSpec {
        labels: all_labels.clone(),
        types: vec![],
        write: true,
        end_in_ms: None,
        role: Role::Carer,
    };
    let limited = GrantSpec {
        labels: vec!["general", "social-care"],
        types: vec!["Observation"],
        write: false,
        end_in_ms: None,
        role: Role::Family,
    };
    let expiring = GrantSpec {
        end_in_ms: Some(6_000),
        ..GrantSpec {
            labels: all_labels.clone(),
            types: vec![],
            write: true,
            end_in_ms: None,
            role: Role::Carer,
        }
    };
    let professional = GrantSpec {
        labels: vec!["general", "mental-health"],
        types: vec![],
        write: true,
        end_in_ms: None,
        role: Role::Professional,
    };
    let elsewhere = GrantSpec {
        labels: all_labels.clone(),
        types: vec![],
        write: true,
        end_in_ms: None,
        role: Role::Professional,
    };
    let started = std::time::Instant::now();
    let (_, expired_token) = grant(&app, &mut smtp, &alice, "expiring@example.org", &expiring);
    let (_, full_token) = grant(&app, &mut smtp, &alice, "full@example.org", &full);
    let (_, limited_token) = grant(&app, &mut smtp, &alice, "limited@example.org", &limited);
    let (revoked_id, revoked_token) = grant(&app, &mut smtp, &alice, "revoked@example.org", &full);
    let (_, professional_token) = grant(&app, &mut smtp, &alice, "pro@example.org", &professional);
    let (_, elsewhere_token) = grant(&app, &mut smtp, &bea, "pro-b@example.org", &elsewhere);
    let alice_record = RecordId::parse(&alice).unwrap();
    app.app()
        .revoke_access(&owner_context(&alice_record), &revoked_id)
        .unwrap();
    // The expiring grant has run out by the time the matrix runs.
    if let Some(wait) = std::time::Duration::from_millis(6_500).checked_sub(started.elapsed()) {
        std::thread::sleep(wait);
    }

    let grantee = |labels: &[&'static str],
                   types: &[&'static str],
                   write: bool,
                   live: bool,
                   record: usize| Kind::Grantee {
        record,
        labels: labels.to_vec(),
        types: types.to_vec(),
        write,
        live,
    };
    // Two apps Alice connects through OAuth: one broad, seeing general and social care
    // entries; one reading Observations, seeing general entries only.
    let redirect = format!("{}/app-callback", app.base);
    let app_token = |scope: &str, labels: &[&str]| {
        let client = crate::oauth::register(&app, &redirect);
        crate::oauth::connect_seeing(&app, &owner.browser, &client, &redirect, scope, labels)
            ["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let broad_app = app_token(
        "launch/patient patient/*.cruds",
        &["general", "social-care"],
    );
    let narrow_app = app_token("launch/patient patient/Observation.rs", &["general"]);
    // Two organisations' systems, with tokens from the real client-credentials flow: one
    // Alice gave general and social care entries, to look and add; one Bea gave everything
    // to look at, and Alice nothing.
    let organisation = |record: &str, labels: &[&str], write: bool| {
        let (org, client) = crate::backend::register_system(&app, "Matrix Surgery");
        let new = NewGrant {
            name: String::new(),
            email: String::new(),
            role: Role::Organisation,
            labels: labels
                .iter()
                .map(|l| PrivacyLabel::from_code(l).unwrap())
                .collect(),
            types: vec![],
            write,
            start: hale_fhir::date::now_millis() - 1000,
            end: None,
        };
        let rec = RecordId::parse(record).unwrap();
        app.app()
            .give_access_to_organisation(&owner_context(&rec), &org, &new)
            .unwrap()
            .unwrap();
        crate::backend::system_token(&app, &client, "system/*.cruds")
    };
    let alices_surgery = organisation(&alice, &["general", "social-care"], true);
    let beas_surgery = organisation(&bea, &LABELS, false);
    let actors = vec![
        Who {
            name: "owner",
            token: app.token(&alice, "patient/*.cruds"),
            kind: Kind::Owner {
                record: 0,
                observations_only: false,
            },
        },
        Who {
            name: "narrow app",
            token: app.token(&alice, "patient/Observation.rs"),
            kind: Kind::Owner {
                record: 0,
                observations_only: true,
            },
        },
        Who {
            name: "another record's owner",
            token: app.token(&bea, "patient/*.cruds"),
            kind: Kind::Owner {
                record: 1,
                observations_only: false,
            },
        },
        Who {
            name: "proxy, full grant",
            token: full_token,
            kind: grantee(&LABELS, &[], true, true, 0),
        },
        Who {
            name: "proxy, limited grant",
            token: limited_token,
            kind: grantee(
                &["general", "social-care"],
                &["Observation"],
                false,
                true,
                0,
            ),
        },
        Who {
            name: "proxy, expired grant",
            token: expired_token,
            kind: grantee(&LABELS, &[], true, false, 0),
        },
        Who {
            name: "proxy, revoked grant",
            token: revoked_token,
            kind: grantee(&LABELS, &[], true, false, 0),
        },
        Who {
            name: "professional with a grant",
            token: professional_token,
            kind: grantee(&["general", "mental-health"], &[], true, true, 0),
        },
        Who {
            name: "professional without a grant here",
            token: elsewhere_token,
            kind: grantee(&LABELS, &[], true, true, 1),
        },
        Who {
            name: "connected app, broad",
            token: broad_app,
            kind: Kind::App {
                record: 0,
                labels: vec!["general", "social-care"],
                observations_only: false,
            },
        },
        Who {
            name: "connected app, narrow",
            token: narrow_app,
            kind: Kind::App {
                record: 0,
                labels: vec!["general"],
                observations_only: true,
            },
        },
        Who {
            name: "organisation with a grant",
            token: alices_surgery,
            kind: Kind::Organisation {
                record: 0,
                labels: vec!["general", "social-care"],
                write: true,
            },
        },
        Who {
            name: "organisation without a grant here",
            token: beas_surgery,
            kind: Kind::Organisation {
                record: 1,
                labels: LABELS.to_vec(),
                write: false,
            },
        },
        Who {
            name: "system",
            token: app.system_token.clone(),
            kind: Kind::System,
        },
        Who {
            name: "anonymous",
            token: String::new(),
            kind: Kind::Anonymous,
        },
    ];

    let mut cases = 0usize;
    let mut failures = Vec::new();
    for who in &actors {
        for action in ACTIONS {
            // What each type answers for an id nobody holds, for this actor and action.
            let missing: Vec<(&str, Resp)> = ["Patient", "Observation", "Condition"]
                .into_iter()
                .map(|t| {
                    let body = json!({"resourceType": t});
                    (t, send(&app, who, action, t, MISSING, &body))
                })
                .collect();
            for t in &seeds {
                let writes = matches!(
                    action,
                    Action::Update | Action::Patch | Action::Delete | Action::TransactionDelete
                );
                if t.own_patient && matches!(action, Action::TransactionDelete) {
                    continue;
                }
                let scope_write = matches!(action, Action::ConditionalCreate);
                let verdict = oracle(who, writes, scope_write, t);
                let got = send(&app, who, action, t.rtype, &t.id, &t.body);
                cases += 1;
                let ok = match status_for(who, verdict, action, t) {
                    Some(status) => {
                        // (A refused search has no bundle to look into.)
                        let inner_ok = status == 400
                            || match (verdict, action) {
                                (Verdict::Allow, Action::SearchById | Action::CountById) => {
                                    inner(action, &got) == json!(1)
                                }
                                (_, Action::BatchRead) if verdict != Verdict::Unauthenticated => {
                                    match batch_status(verdict) {
                                        Some(want) => inner(action, &got)
                                            .as_str()
                                            .is_some_and(|s| s.starts_with(want)),
                                        None => {
                                            let (_, absent) = missing
                                                .iter()
                                                .find(|(ty, _)| *ty == t.rtype)
                                                .unwrap();
                                            inner(action, &got) == inner(action, absent)
                                        }
                                    }
                                }
                                (Verdict::Hidden, Action::Update) => {
                                    normalised(&got.bytes, &t.id)
                                        == format!(
                                            r#"{{"resourceType":"OperationOutcome","issue":[{{"severity":"error","code":"conflict","diagnostics":"conflict: the id {}/{{id}} is not available"}}]}}"#,
                                            t.rtype
                                        )
                                }
                                _ => true,
                            };
                        got.status == status && inner_ok
                    }
                    None => {
                        let (_, absent) = missing.iter().find(|(ty, _)| *ty == t.rtype).unwrap();
                        match action {
                            Action::SearchById | Action::CountById | Action::BatchRead => {
                                got.status == absent.status
                                    && inner(action, &got) == inner(action, absent)
                            }
                            _ => {
                                got.status == absent.status
                                    && normalised(&got.bytes, &t.id)
                                        == normalised(&absent.bytes, MISSING)
                            }
                        }
                    }
                };
                if !ok {
                    failures.push(format!(
                        "{} {action:?} {}/{} (record {}, {:?}, by person {}): expected {verdict:?}, got {} {}",
                        who.name,
                        t.rtype,
                        t.id,
                        t.record,
                        t.label,
                        t.by_person,
                        got.status,
                        String::from_utf8_lossy(&got.bytes).chars().take(300).collect::<String>()
                    ));
                }
            }
        }

        // Searches: what each finds is what the oracle lets the actor read, and the counts
        // and included resources agree.
        for rtype in TYPES {
            let visible: BTreeSet<String> = seeds
                .iter()
                .filter(|t| t.rtype == rtype && oracle(who, false, false, t) == Verdict::Allow)
                .map(|t| t.id.clone())
                .collect();
            let in_alice: BTreeSet<String> = seeds
                .iter()
                .filter(|t| t.rtype == rtype && t.record == 0)
                .filter(|t| oracle(who, false, false, t) == Verdict::Allow)
                .map(|t| t.id.clone())
                .collect();
            let seeded: BTreeSet<String> = seeds.iter().map(|t| t.id.clone()).collect();
            let patient = &seeds[0];
            let probe = seeds.iter().find(|t| t.rtype == rtype).unwrap();
            let type_verdict = oracle(who, false, false, probe);
            let expected_status = match type_verdict {
                Verdict::Unauthenticated => 401,
                Verdict::ScopeRefused => 403,
                _ => 200,
            };
            // An organisation's system names the person it searches, or is refused.
            let organisation = matches!(who.kind, Kind::Organisation { .. });
            let unnamed_status = if organisation { 400 } else { expected_status };
            // The operator searches across records by an id or a Patient's code; a chain
            // across records has no index to serve it, so it names the person too.
            let system = matches!(who.kind, Kind::System);
            let unnamed_chain_status = if system { 400 } else { unnamed_status };
            let searches: Vec<(String, BTreeSet<String>, &str, u16)> = vec![
                (
                    format!("/fhir/{rtype}?_count=1000&_total=accurate"),
                    visible.clone(),
                    "match",
                    unnamed_status,
                ),
                (
                    format!("/fhir/{rtype}?subject=Patient/{alice}&_count=1000"),
                    in_alice.clone(),
                    "match",
                    expected_status,
                ),
                (
                    format!("/fhir/{rtype}?subject:Patient.name=Alex&_count=1000"),
                    in_alice.clone(),
                    "match",
                    unnamed_chain_status,
                ),
                (
                    format!(
                        "/fhir/{rtype}?subject=Patient/{alice}&subject:Patient.name=Alex&_count=1000"
                    ),
                    in_alice.clone(),
                    "match",
                    expected_status,
                ),
                (
                    format!("/fhir/{rtype}/_history?_count=1000"),
                    visible.clone(),
                    "",
                    unnamed_status,
                ),
            ];
            for (path, want, mode, expected_status) in searches {
                let r = app.get(&path, &who.token);
                cases += 1;
                let got: BTreeSet<String> = ids_in(&r.json, mode)
                    .intersection(&seeded)
                    .cloned()
                    .collect();
                let ok = r.status == expected_status && (r.status != 200 || got == want);
                let total_ok = r.status != 200
                    || r.json["total"].is_null()
                    || r.json["total"].as_u64() == Some(ids_in(&r.json, mode).len() as u64);
                if !ok || !total_ok {
                    failures.push(format!(
                        "{} GET {path}: expected {expected_status} with {} entries, got {} with {} (total {})",
                        who.name,
                        want.len(),
                        r.status,
                        got.len(),
                        r.json["total"]
                    ));
                }
            }
            // A count agrees with the search it counts.
            let count = app.get(&format!("/fhir/{rtype}?_summary=count"), &who.token);
            let listed = app.get(&format!("/fhir/{rtype}?_count=1000"), &who.token);
            cases += 1;
            if count.status != unnamed_status
                || (count.status == 200
                    && count.json["total"].as_u64()
                        != Some(ids_in(&listed.json, "match").len() as u64))
            {
                failures.push(format!(
                    "{} {rtype}?_summary=count: {} total {} for {} listed",
                    who.name,
                    count.status,
                    count.json["total"],
                    ids_in(&listed.json, "match").len()
                ));
            }
            // Included resources: the entries a Patient search brings in.
            let patient_verdict = oracle(who, false, false, patient);
            let rev = app.get(
                &format!("/fhir/Patient?_id={alice}&_revinclude={rtype}:subject"),
                &who.token,
            );
            cases += 1;
            let rev_expected = match (patient_verdict, type_verdict) {
                (Verdict::Unauthenticated, _) => 401,
                (Verdict::ScopeRefused, _) => 403,
                _ => 200,
            };
            let rev_got: BTreeSet<String> = ids_in(&rev.json, "include")
                .intersection(&seeded)
                .cloned()
                .collect();
            let rev_want = if type_verdict == Verdict::ScopeRefused {
                BTreeSet::new()
            } else {
                in_alice.clone()
            };
            if rev.status != rev_expected || (rev.status == 200 && rev_got != rev_want) {
                failures.push(format!(
                    "{} Patient?_revinclude={rtype}: {} with {} included, expected {rev_expected} with {}",
                    who.name,
                    rev.status,
                    rev_got.len(),
                    rev_want.len()
                ));
            }
            // A chain into other entries: refused whatever is stored for an actor who sees
            // part of the record, and across records (the operator, an organisation),
            // answered for everyone else.
            let chained = match rtype {
                "Observation" => "/fhir/Observation?derived-from:Observation.status=final",
                _ => "/fhir/Condition?evidence-detail:Observation.status=final",
            };
            let narrowed = matches!(who.kind, Kind::Grantee { .. } | Kind::App { .. });
            let r = app.get(chained, &who.token);
            cases += 1;
            let want = match type_verdict {
                Verdict::Unauthenticated => 401,
                Verdict::ScopeRefused => 403,
                _ if organisation || system => 400,
                _ if narrowed => 403,
                _ => 200,
            };
            if r.status != want {
                failures.push(format!("{} {chained}: {} not {want}", who.name, r.status));
            }
        }
        // Reverse chaining: the Patients an entry refers to. Refused whatever is stored for an
        // actor who sees part of a record, and across records; otherwise the record's Patient.
        let has = app.get(
            "/fhir/Patient?_has:Observation:subject:code:text=matrix",
            &who.token,
        );
        cases += 1;
        let patient_verdict = oracle(who, false, false, &seeds[0]);
        let (want_status, want_ids): (u16, BTreeSet<String>) = match (&who.kind, patient_verdict) {
            (_, Verdict::Unauthenticated) => (401, BTreeSet::new()),
            (_, Verdict::ScopeRefused) => (403, BTreeSet::new()),
            (Kind::Grantee { .. } | Kind::App { .. }, _) => (403, BTreeSet::new()),
            (Kind::Organisation { .. }, _) => (400, BTreeSet::new()),
            (Kind::System, _) => (400, BTreeSet::new()),
            (Kind::Owner { record, .. }, _) => (200, [records[*record].clone()].into()),
            (Kind::Anonymous, _) => (401, BTreeSet::new()),
        };
        let got: BTreeSet<String> = ids_in(&has.json, "match");
        if has.status != want_status || (has.status == 200 && got != want_ids) {
            failures.push(format!(
                "{} Patient?_has: {} with {:?}, expected {want_status} with {want_ids:?}",
                who.name, has.status, got
            ));
        }
        // $everything: the record's entries the actor may read, and nothing else.
        let everything = app.get(&format!("/fhir/Patient/{alice}/$everything"), &who.token);
        cases += 1;
        let patient_verdict = oracle(who, false, false, &seeds[0]);
        let want: BTreeSet<String> = seeds
            .iter()
            .filter(|t| t.record == 0 && oracle(who, false, false, t) == Verdict::Allow)
            .map(|t| t.id.clone())
            .collect();
        let got: BTreeSet<String> = ids_in(&everything.json, "")
            .intersection(&seeds.iter().map(|t| t.id.clone()).collect())
            .cloned()
            .collect();
        let ok = match patient_verdict {
            Verdict::Allow => everything.status == 200 && got == want,
            Verdict::Unauthenticated => everything.status == 401,
            Verdict::ScopeRefused => everything.status == 403,
            _ => everything.status == 404,
        };
        if !ok {
            failures.push(format!(
                "{} $everything: {} with {} entries, expected {:?} with {}",
                who.name,
                everything.status,
                got.len(),
                patient_verdict,
                want.len()
            ));
        }
        // Creating: within the grant's labels and types, into the actor's own record only.
        for rtype in TYPES {
            for label in LABELS {
                let body = json!({"resourceType": rtype, "status": "final",
                    "code": {"text": "matrix new"},
                    "subject": {"reference": format!("Patient/{alice}")},
                    "meta": {"security": [{"system": "urn:hale:privacy-label", "code": label}]}});
                let mut body = body;
                if rtype == "Condition" {
                    body.as_object_mut().unwrap().remove("status");
                }
                let r = app.post(&format!("/fhir/{rtype}"), &who.token, &body);
                cases += 1;
                let verdict = oracle_create(who, rtype, label);
                let ok = match verdict {
                    Verdict::Allow => r.status == 201,
                    Verdict::Unauthenticated => r.status == 401,
                    Verdict::Refused | Verdict::ScopeRefused => r.status == 403,
                    // Another record's patient: refused as a patient that does not exist.
                    Verdict::Hidden => {
                        let mut absent = body.clone();
                        absent["subject"] = json!({"reference": format!("Patient/{MISSING}")});
                        let a = app.post(&format!("/fhir/{rtype}"), &who.token, &absent);
                        r.status == a.status
                            && normalised(&r.bytes, &alice) == normalised(&a.bytes, MISSING)
                    }
                };
                if !ok {
                    failures.push(format!(
                        "{} create {rtype} labelled {label}: expected {verdict:?}, got {} {}",
                        who.name,
                        r.status,
                        String::from_utf8_lossy(&r.bytes)
                            .chars()
                            .take(300)
                            .collect::<String>()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ from the oracle:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(cases >= 10_000, "only {cases} cases");
    eprintln!("access matrix: {cases} cases, all as the oracle says");

    // Every allowed read by someone other than the person is one entry in the log; a read
    // of something hidden from them is none.
    let owner = &actors[0].token;
    let fresh = |label: &str| {
        let body = json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "matrix audited"},
            "subject": {"reference": format!("Patient/{alice}")},
            "meta": {"security": [{"system": "urn:hale:privacy-label", "code": label}]}});
        app.post("/fhir/Observation", owner, &body).json["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let shown = fresh("general");
    let hidden = fresh("mental-health");
    let limited = &actors[4];
    assert_eq!(
        app.get(&format!("/fhir/Observation/{shown}"), &limited.token)
            .status,
        200
    );
    assert_eq!(
        app.get(&format!("/fhir/Observation/{hidden}"), &limited.token)
            .status,
        404
    );
    let log = app
        .app()
        .audit_of_record(&owner_context(&alice_record), &alice_record, None, 1000)
        .unwrap();
    let reads_of = |id: &str, outcome: &str| {
        log.iter()
            .filter(|e| e.entry.action == "read" && e.entry.what == format!("Observation/{id}"))
            .filter(|e| e.entry.actor.starts_with("account:") && e.entry.outcome == outcome)
            .collect::<Vec<_>>()
    };
    let one = reads_of(&shown, "ok");
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(
        one[0].entry.on_behalf_of.as_deref(),
        Some(format!("record:{alice}").as_str())
    );
    assert_eq!(one[0].entry.purpose, "proxy");
    // The attempt on the hidden one is recorded as refused, for the person to see.
    assert!(reads_of(&hidden, "ok").is_empty());
    assert_eq!(reads_of(&hidden, "refused").len(), 1);
}
