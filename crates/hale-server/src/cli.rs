//! The `hale` command line: run Hale, and operate it.

use std::io::Write;
use std::path::PathBuf;

use crate::Config;
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use hale_core::RecordId;

#[derive(Parser)]
#[command(
    name = "hale",
    version,
    about = "Hale: a personal health record that the person owns"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
pub(crate) struct DataArgs {
    /// The data folder (embedded database and key file).
    #[arg(
        long,
        env = "HALE_DATA_DIR",
        default_value = "./hale-data",
        global = true
    )]
    data_dir: PathBuf,
    /// A database URL: postgres://… (or sqlite://PATH). Default: the embedded database.
    #[arg(long, env = "HALE_DATABASE", global = true)]
    database: Option<String>,
    /// The master key file. Default: DATA_DIR/hale.key. HALE_KEY (64 hex digits) wins.
    #[arg(long, env = "HALE_KEY_FILE", global = true)]
    key_file: Option<PathBuf>,
    /// Where Hale's emails go: smtp://host:port (a local relay, plain),
    /// smtp+starttls://USER:PASSWORD@host:587 or smtps://USER:PASSWORD@host:465 (a mail
    /// service, over TLS). Default: files in DATA_DIR/outbox.
    #[arg(long, env = "HALE_SMTP_URL", global = true, hide_env_values = true)]
    smtp_url: Option<String>,
    /// A certificate authority (PEM file) to trust for the mail server, when it has a
    /// private one.
    #[arg(long, env = "HALE_SMTP_CA", global = true)]
    smtp_ca: Option<PathBuf>,
    /// The sender of Hale's emails.
    #[arg(long, env = "HALE_MAIL_FROM", global = true, default_value = crate::DEFAULT_MAIL_FROM)]
    mail_from: String,
    /// Seconds a second factor counts as recent before a sensitive action asks again.
    #[arg(long, env = "HALE_REAUTH_WINDOW", global = true, default_value_t = 900)]
    reauth_window: i64,
    /// An OpenID Connect provider people can sign in with: its issuer URL (NHS login:
    /// https://auth.login.nhs.uk, or its sandpit). Register Hale there with the key from
    /// `hale admin oidc public-key`.
    #[arg(
        long,
        env = "HALE_OIDC_ISSUER",
        global = true,
        requires = "oidc_client_id"
    )]
    oidc_issuer: Option<String>,
    /// Hale's client id at the provider.
    #[arg(long, env = "HALE_OIDC_CLIENT_ID", global = true)]
    oidc_client_id: Option<String>,
    /// Scopes to ask the provider for, besides openid.
    #[arg(
        long,
        env = "HALE_OIDC_SCOPE",
        global = true,
        default_value = "profile email"
    )]
    oidc_scope: String,
    /// Vectors of trust to ask for, comma-separated (NHS login's P9 with a second factor by
    /// default); empty for a provider that does not use them.
    #[arg(
        long,
        env = "HALE_OIDC_VTR",
        global = true,
        default_value = "P9.Cp.Cd,P9.Cp.Ck,P9.Cm"
    )]
    oidc_vtr: String,
    /// The provider's name on the sign-in page.
    #[arg(
        long,
        env = "HALE_OIDC_NAME",
        global = true,
        default_value = "NHS login"
    )]
    oidc_name: String,
}

impl DataArgs {
    pub(crate) fn config(&self) -> Config {
        Config {
            data_dir: self.data_dir.clone(),
            database: self.database.clone(),
            key_file: self.key_file.clone(),
            key_hex: std::env::var("HALE_KEY").ok().filter(|k| !k.is_empty()),
            public_url: None,
            smtp_url: self.smtp_url.clone(),
            smtp_ca: self.smtp_ca.clone(),
            mail_from: self.mail_from.clone(),
            reauth_window_secs: self.reauth_window,
            oidc: self.oidc_issuer.as_ref().map(|issuer| crate::OidcConfig {
                issuer: issuer.clone(),
                client_id: self.oidc_client_id.clone().unwrap_or_default(),
                scope: self.oidc_scope.clone(),
                vtr: self
                    .oidc_vtr
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .collect(),
                name: self.oidc_name.clone(),
            }),
            tls: None,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        #[command(flatten)]
        data: DataArgs,
        /// The address to listen on.
        #[arg(long, env = "HALE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// The public base URL for links, if not http://HOST.
        #[arg(long, env = "HALE_PUBLIC_URL")]
        public_url: Option<String>,
        /// Add a synthetic demo person with a year of record, and print how to sign in.
        #[arg(long)]
        demo: bool,
        /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
        #[arg(long, env = "HALE_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM).
        #[arg(long, env = "HALE_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Operator tasks.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Import a wearable or app export into a person's record.
    Import {
        #[command(subcommand)]
        command: crate::import::ImportCommand,
    },
    /// The audit log: check it, or sign a checkpoint to keep elsewhere.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Copy the embedded database to FILE (consistent, still encrypted with the same key).
    Backup {
        #[command(flatten)]
        data: DataArgs,
        /// Where to write the copy.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walks the whole chain; names the first entry that does not hold and fails if any.
    Verify {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Signs a checkpoint at the newest entry and prints every checkpoint as JSON lines, to
    /// keep somewhere the database's administrators cannot change.
    Checkpoint {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// People and their records.
    Person {
        #[command(subcommand)]
        command: PersonCommand,
    },
    /// Bearer tokens for scripts and tests.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Apps that people connect to their records, and organisations' systems (OAuth 2.0 /
    /// SMART clients).
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Health and care organisations, which people can give access to their records.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Signing in through an OpenID Connect provider (NHS login).
    Oidc {
        #[command(subcommand)]
        command: OidcCommand,
    },
}

#[derive(Subcommand)]
enum OidcCommand {
    /// Print Hale's public key (a JWK Set) to register with the provider, which checks the
    /// assertions Hale signs at its token endpoint (private_key_jwt).
    PublicKey {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Register an organisation; prints its id.
    Create {
        #[command(flatten)]
        data: DataArgs,
        /// Its name, as people will see it when choosing whom to share with.
        #[arg(long)]
        name: String,
    },
    /// Make an account one of the organisation's professionals: they then see the records
    /// that gave the organisation access (they sign up first).
    AddMember {
        #[command(flatten)]
        data: DataArgs,
        /// The organisation's id.
        #[arg(long)]
        org: String,
        /// The professional's account, by email address.
        #[arg(long)]
        email: String,
    },
    /// Take an account out of its organisation: it reaches nothing the organisation was
    /// given, from its next request.
    RemoveMember {
        #[command(flatten)]
        data: DataArgs,
        /// The professional's account, by email address.
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register an app (with --redirect-uri, and --public or its --jwks) or an
    /// organisation's system (with --org and --jwks); prints its client id.
    Create {
        #[command(flatten)]
        data: DataArgs,
        /// The app's or system's name, as people will see it.
        #[arg(long)]
        name: String,
        /// Where the app may be sent back to (repeat for several); https, or http on this
        /// machine.
        #[arg(
            long = "redirect-uri",
            required_unless_present = "org",
            conflicts_with = "org"
        )]
        redirect_uris: Vec<String>,
        /// A public client (in a browser or on a phone): no secret, PKCE alone.
        #[arg(long, conflicts_with = "org")]
        public: bool,
        /// The organisation a system belongs to (SMART Backend Services).
        #[arg(long, requires = "jwks")]
        org: Option<String>,
        /// A file holding the public keys (a JWK Set) of an organisation's system, or of a
        /// confidential app (one that runs on a server), which signs its token requests.
        #[arg(long, conflicts_with = "public")]
        jwks: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum PersonCommand {
    /// Create a record for a person; prints the record id.
    Create {
        #[command(flatten)]
        data: DataArgs,
        /// The person's name, as they write it.
        #[arg(long)]
        name: String,
        /// Their email address.
        #[arg(long)]
        email: Option<String>,
        /// Their NHS number (checked).
        #[arg(long)]
        nhs_number: Option<String>,
    },
    /// Record an identity check made in person against photo ID; raises the person's
    /// verification level (P9 lets them see what health and care services wrote).
    Verify {
        #[command(flatten)]
        data: DataArgs,
        /// The person's record.
        #[arg(long)]
        record: String,
        /// The level reached: P5 or P9.
        #[arg(long)]
        level: String,
        /// What was checked, e.g. "UK passport, checked by the practice manager".
        #[arg(long)]
        evidence: String,
    },
    /// Write out everything a record holds, for a person who asked another way (a subject
    /// access request by letter): `record.json` (a FHIR Bundle) and `readings.csv`.
    Export {
        #[command(flatten)]
        data: DataArgs,
        /// The person's record.
        #[arg(long)]
        record: String,
        /// A new folder to write the two files into.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Erase a record and the accounts that own it, for good (the person's right to
    /// erasure, asked for another way). Cannot be undone.
    Erase {
        #[command(flatten)]
        data: DataArgs,
        /// The person's record.
        #[arg(long)]
        record: String,
        /// Confirms it: nothing is erased without it.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a bearer token; prints the token.
    Issue {
        #[command(flatten)]
        data: DataArgs,
        /// The record the token reaches.
        #[arg(long, conflicts_with = "system", required_unless_present = "system")]
        record: Option<String>,
        /// An operator token that can create records and write into any.
        #[arg(long)]
        system: bool,
        /// SMART scopes, e.g. 'patient/*.cruds' or 'system/*.cruds'.
        #[arg(long)]
        scope: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
}

/// Parses the process arguments and runs the command.
pub fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve {
            data,
            listen,
            public_url,
            demo,
            tls_cert,
            tls_key,
        } => {
            let mut config = data.config();
            config.public_url = public_url;
            config.tls = tls_cert.zip(tls_key);
            serve(config, &listen, demo)
        }
        Command::Admin {
            command:
                AdminCommand::Person {
                    command:
                        PersonCommand::Create {
                            data,
                            name,
                            email,
                            nhs_number,
                        },
                },
        } => {
            if let Some(n) = &nhs_number
                && !hale_fhir::nhs_number::is_valid(n)
            {
                anyhow::bail!("that NHS number fails its check digit");
            }
            let app = crate::open_app(&data.config())?;
            let record = app.create_person(&name, email.as_deref(), nhs_number.as_deref())?;
            println!("{record}");
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Person {
                    command:
                        PersonCommand::Verify {
                            data,
                            record,
                            level,
                            evidence,
                        },
                },
        } => {
            let level = match hale_core::VerificationLevel::parse(&level) {
                Some(l @ (hale_core::VerificationLevel::P5 | hale_core::VerificationLevel::P9)) => {
                    l
                }
                _ => anyhow::bail!("the level must be P5 or P9"),
            };
            let record = RecordId::parse(&record).context("not a record id")?;
            let app = crate::open_app(&data.config())?;
            let operator = hale_core::RequestContext::operator(
                hale_core::Actor::System {
                    scopes: hale_core::Scopes::parse("system/*.cruds").context("scopes")?,
                    subject: "operator-cli".into(),
                },
                "cli-verify",
            );
            let n = app.verify_identity(&operator, &record, level, &evidence)?;
            eprintln!(
                "identity check recorded: {n} account(s) now at {}",
                level.as_str()
            );
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Person {
                    command: PersonCommand::Export { data, record, out },
                },
        } => {
            let record = RecordId::parse(&record).context("not a record id")?;
            let app = crate::open_app(&data.config())?;
            std::fs::create_dir(&out)
                .with_context(|| format!("could not make the folder {}", out.display()))?;
            let mut readings = std::io::BufWriter::new(
                std::fs::File::create(out.join("readings.csv")).context("readings.csv")?,
            );
            let mut failed = None;
            let mut send = |chunk: Vec<u8>| match readings.write_all(&chunk) {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            };
            let exported = app.export_for_operator(&operator("cli-export")?, &record, &mut send);
            let (all, count) = match exported {
                Ok(x) => x,
                Err(e) => {
                    // Nothing half-written is left behind to be taken for an answer.
                    let _ = std::fs::remove_dir_all(&out);
                    return Err(e.into());
                }
            };
            if let Some(e) = failed {
                return Err(e).context("could not write readings.csv");
            }
            readings.flush().context("could not write readings.csv")?;
            let bundle = hale_app::export_bundle(&all, None);
            std::fs::write(out.join("record.json"), serde_json::to_vec_pretty(&bundle)?)
                .context("could not write record.json")?;
            eprintln!("wrote {} resources and {count} readings", all.len());
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Person {
                    command: PersonCommand::Erase { data, record, yes },
                },
        } => {
            if !yes {
                anyhow::bail!("erasing a record cannot be undone: add --yes to go ahead");
            }
            let record = RecordId::parse(&record).context("not a record id")?;
            let app = crate::open_app(&data.config())?;
            app.erase_for_operator(&operator("cli-erase")?, &record)?;
            eprintln!("the record and its accounts are erased");
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Token {
                    command:
                        TokenCommand::Issue {
                            data,
                            record,
                            system,
                            scope,
                            ttl,
                        },
                },
        } => {
            let app = crate::open_app(&data.config())?;
            let record = match (record, system) {
                (Some(r), false) => Some(RecordId::parse(&r).context("not a record id")?),
                _ => None,
            };
            let token = app.issue_token(
                if record.is_some() {
                    "operator-cli"
                } else {
                    "system-cli"
                },
                record.as_ref(),
                &scope,
                ttl,
            )?;
            println!("{token}");
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Client {
                    command:
                        ClientCommand::Create {
                            data,
                            name,
                            redirect_uris,
                            public,
                            org,
                            jwks,
                        },
                },
        } => {
            let app = crate::open_app(&data.config())?;
            let keys = match &jwks {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read the key set {}", path.display()))?,
                ),
                None => None,
            };
            let id = match (org, keys) {
                (Some(org), Some(keys)) => app.register_system_client(&org, &name, &keys)?,
                (_, keys) => app.register_client(&name, &redirect_uris, public, keys.as_deref())?,
            };
            println!("{id}");
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Oidc {
                    command: OidcCommand::PublicKey { data },
                },
        } => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::oidc_public_keys(&data.config())?)?
            );
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Org {
                    command: OrgCommand::Create { data, name },
                },
        } => {
            let app = crate::open_app(&data.config())?;
            println!("{}", app.register_organisation(&name)?);
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Org {
                    command: OrgCommand::AddMember { data, org, email },
                },
        } => {
            let app = crate::open_app(&data.config())?;
            app.add_organisation_member(&org, &email)?;
            println!("the account now belongs to the organisation");
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Org {
                    command: OrgCommand::RemoveMember { data, email },
                },
        } => {
            let app = crate::open_app(&data.config())?;
            app.remove_organisation_member(&email)?;
            println!("the account no longer belongs to an organisation");
            Ok(())
        }
        Command::Import { command } => crate::import::run(command),
        Command::Audit {
            command: AuditCommand::Verify { data },
        } => {
            let app = crate::open_app(&data.config())?;
            let v = app.audit_verify()?;
            match v.first_bad {
                None => {
                    println!("the audit log holds: {} entries checked", v.entries);
                    Ok(())
                }
                Some((seq, why)) => {
                    println!(
                        "the audit log does not hold: entry {seq}: {why} ({} entries before it hold)",
                        v.entries
                    );
                    anyhow::bail!("the audit log has been tampered with at entry {seq}")
                }
            }
        }
        Command::Audit {
            command: AuditCommand::Checkpoint { data },
        } => {
            let app = crate::open_app(&data.config())?;
            for c in app.audit_checkpoint()? {
                println!(
                    "{}",
                    serde_json::json!({"seq": c.seq, "hash": c.hash, "at": c.at, "mac": c.mac})
                );
            }
            Ok(())
        }
        Command::Backup { data, file } => {
            let (store, _) = crate::open_store(&data.config())?;
            store
                .backup(&file)
                .with_context(|| format!("cannot write the backup to {}", file.display()))?;
            eprintln!(
                "backup written to {} (encrypted with the same key)",
                file.display()
            );
            Ok(())
        }
    }
}

fn serve(config: Config, listen: &str, demo: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let app = crate::open_app(&config)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        if demo {
            let app = app.clone();
            tokio::task::spawn_blocking(move || print_demo(&app)).await??;
        }
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        println!("Hale is running at {scheme}://{addr}/ (FHIR API at {scheme}://{addr}/fhir)");
        crate::serve(app, &config, listener, shutdown_signal()).await
    })
}

/// Makes the demo person if needed and prints how to sign in as them.
fn print_demo(app: &crate::App) -> anyhow::Result<()> {
    if let Some((email, password, key)) = app.demo_sign_in()? {
        println!("The demo person is already here. Sign in with:");
        println!("  email address:  {email}");
        println!("  password:       {password}");
        println!("  authenticator:  add this key to an authenticator app: {key}");
        println!("  (or use a recovery code printed when the demo was first made)");
        return Ok(());
    }
    eprintln!("making a demo person with a year of synthetic record (a few seconds)…");
    let demo = app.create_demo_person()?;
    println!("A demo person, Sam Demo, is ready (synthetic data only). Sign in with:");
    println!("  email address:  {}", demo.email);
    println!("  password:       {}", demo.password);
    println!(
        "  then either a code from an authenticator app with this key: {}",
        demo.authenticator_key
    );
    println!("  or one of these one-time recovery codes:");
    for code in &demo.recovery_codes {
        println!("    {code}");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

/// The operator at the command line, as an actor.
fn operator(request_id: &str) -> anyhow::Result<hale_core::RequestContext> {
    Ok(hale_core::RequestContext::operator(
        hale_core::Actor::System {
            scopes: hale_core::Scopes::parse("system/*.cruds").context("scopes")?,
            subject: "operator-cli".into(),
        },
        request_id,
    ))
}
