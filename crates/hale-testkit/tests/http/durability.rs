//! `kill -9` in the middle of a stream of writes: every acknowledged write survives, no
//! partial transaction is visible, and the search index agrees with the stored resources.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(data: &str, port: u16) -> Child {
    let mut child = crate::hale()
        .args([
            "serve",
            "--data-dir",
            data,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("Hale is running"), "{line}");
    child
}

/// A transaction of two observations sharing a tag: after a crash, both or neither exist.
fn pair(patient: &str, tag: &str) -> Value {
    let obs = |n: u32| {
        json!({"request": {"method": "POST", "url": "Observation"}, "resource": {
        "resourceType": "Observation", "status": "final", "code": {"text": "crash test"},
        "identifier": [{"system": "https://example.org/crash", "value": format!("{tag}-{n}")}],
        "subject": {"reference": format!("Patient/{patient}")}, "valueInteger": n}})
    };
    json!({"resourceType": "Bundle", "type": "transaction", "entry": [obs(1), obs(2)]})
}

#[test]
fn acknowledged_writes_survive_sigkill_and_no_partial_transaction_is_visible() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_str().unwrap().to_owned();
    let patient = crate::new_person(&data, "Crash Test");
    let token = crate::record_token(&data, &patient);
    let port = free_port();
    let mut server = start(&data, port);
    let base = format!("http://127.0.0.1:{port}/fhir");

    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop_at = Instant::now() + Duration::from_millis(1500);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (acknowledged, base, token, patient) = (
                acknowledged.clone(),
                base.clone(),
                token.clone(),
                patient.clone(),
            );
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                for i in 0.. {
                    let tag = format!("w{w}-{i}");
                    let Ok(r) = client
                        .post(&base)
                        .bearer_auth(&token)
                        .json(&pair(&patient, &tag))
                        .send()
                    else {
                        break; // the server is gone
                    };
                    if r.status().as_u16() != 200 {
                        break;
                    }
                    acknowledged.lock().unwrap().push(tag);
                    if Instant::now() > stop_at + Duration::from_secs(10) {
                        break;
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(stop_at - Instant::now());
    server.kill().unwrap(); // SIGKILL: no shutdown, no checkpoint
    server.wait().unwrap();
    for w in writers {
        w.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 10,
        "too few writes to mean anything: {}",
        acknowledged.len()
    );

    let mut server = start(&data, port);
    let client = reqwest::blocking::Client::new();
    let get = |path: &str| -> Value {
        client
            .get(format!("{base}{path}"))
            .bearer_auth(&token)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let everything = get(&format!("/Patient/{patient}/$everything?_count=1000"));
    let stored: Vec<String> = everything["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Observation")
        .map(|e| {
            e["resource"]["identifier"][0]["value"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for tag in &acknowledged {
        for n in [1, 2] {
            assert!(
                stored.contains(&format!("{tag}-{n}")),
                "acknowledged write {tag}-{n} was lost"
            );
        }
    }
    // Both halves of every transaction, or neither.
    for id in &stored {
        let (tag, _) = id.rsplit_once('-').unwrap();
        assert!(
            stored.contains(&format!("{tag}-1")) && stored.contains(&format!("{tag}-2")),
            "partial transaction {tag}"
        );
    }
    // The search index agrees with what is stored.
    let counted = get("/Observation?_summary=count")["total"]
        .as_u64()
        .unwrap();
    assert_eq!(counted as usize, stored.len());
    for tag in acknowledged.iter().take(20) {
        let found = get(&format!(
            "/Observation?identifier=https://example.org/crash|{tag}-2"
        ));
        assert_eq!(found["total"], 1, "{tag}");
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

/// `systemctl stop` sends SIGTERM: the server finishes, writes the reads it had queued for the
/// audit log, and closes its database, so the WAL is checkpointed and gone (a stop that left
/// it behind had, after a large import, left gigabytes beside the database).
#[test]
fn a_server_stopped_with_sigterm_logs_its_last_reads_and_closes_its_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_str().unwrap().to_owned();
    let patient = crate::new_person(&data, "Stop Test");
    let token = crate::record_token(&data, &patient);
    let port = free_port();
    let mut server = start(&data, port);
    let client = reqwest::blocking::Client::new();
    let read = |url: &str| {
        client
            .get(format!("http://127.0.0.1:{port}/fhir/{url}"))
            .bearer_auth(&token)
            .send()
            .unwrap()
    };
    for _ in 0..3 {
        assert_eq!(read(&format!("Patient/{patient}")).status(), 200);
    }
    let pid = rustix::process::Pid::from_raw(i32::try_from(server.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let stopped_by = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < stopped_by, "the server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let wal = std::path::Path::new(&data).join("hale.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "the WAL was left behind"
    );
    // The three reads are in the log, seen after a restart.
    let mut server = start(&data, port);
    let log = read("AuditEvent?_count=50").json::<Value>().unwrap();
    let reads = log["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["resource"]["entity"][0]["what"]["reference"] == format!("Patient/{patient}")
                && e["resource"]["action"] == "R"
        })
        .count();
    assert_eq!(reads, 3, "{log}");
    server.kill().unwrap();
    server.wait().unwrap();
}
