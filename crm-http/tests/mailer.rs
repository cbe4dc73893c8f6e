//! `SmtpMailer` against a real SMTP server on loopback (aiosmtpd, started by `.ci/run`, which
//! sets `CRM_TEST_SMTP_URL` and the maildir it delivers into, `CRM_TEST_SMTP_MAILDIR`); outside
//! CI those cases skip, visibly, when it is unset. The failure cases need no server.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crm_core::mail::{Mail, MailError, Mailer, escape_html};
use crm_http::mailer::SmtpMailer;

fn smtp_server() -> Option<(String, PathBuf)> {
    match (std::env::var("CRM_TEST_SMTP_URL"), std::env::var("CRM_TEST_SMTP_MAILDIR")) {
        (Ok(url), Ok(dir)) if !url.is_empty() => Some((url, PathBuf::from(dir))),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CRM_TEST_SMTP_URL is not set under CI: the SMTP tests must run")
        }
        _ => {
            eprintln!("SKIPPED SMTP test: set CRM_TEST_SMTP_URL and CRM_TEST_SMTP_MAILDIR (see .ci/run)");
            None
        }
    }
}

/// The message in the maildir whose text holds `marker`, waiting for the server to write it.
async fn received(maildir: &std::path::Path, marker: &str) -> String {
    let started = Instant::now();
    loop {
        for entry in std::fs::read_dir(maildir.join("new")).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if text.contains(marker) {
                return text;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no message with {marker} arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn mail_arrives_as_text_and_escaped_html() {
    let Some((url, maildir)) = smtp_server() else { return };
    let mailer = SmtpMailer::new(&url, "CRM <crm@example.com>").expect("a mailer");
    let marker = uuid::Uuid::now_v7().simple().to_string();
    let name = r#"<script>alert("x")</script> & Co"#;
    let mail = Mail::text("ann@example.com", format!("Lead assigned {marker}"), format!("{name} is yours."))
        .with_html(format!("<p><b>{}</b> is yours.</p>", escape_html(name)));
    mailer.send(&mail).await.expect("sent");

    let message = received(&maildir, &marker).await;
    let headers =
        message.split("\r\n\r\n").next().or_else(|| message.split("\n\n").next()).unwrap_or_default();
    assert!(headers.contains("From: CRM <crm@example.com>"), "{headers}");
    assert!(headers.contains("To: ann@example.com"), "{headers}");
    assert!(headers.contains(&format!("Subject: Lead assigned {marker}")), "{headers}");
    assert!(message.contains("multipart/alternative"), "{message}");
    assert!(message.contains("text/plain") && message.contains("text/html"), "{message}");
    assert!(message.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co"), "{message}");
    assert_eq!(message.matches("<script>").count(), 1, "raw only in the plain text: {message}");
}

#[tokio::test]
async fn unreachable_servers_are_retried_and_bad_input_refused() {
    // Port 1 on loopback: nothing listens there.
    let mailer = SmtpMailer::new("smtp://127.0.0.1:1", "crm@example.com").expect("a mailer");
    let outcome = mailer.send(&Mail::text("ann@example.com", "Hi", "Hi")).await;
    assert!(matches!(outcome, Err(MailError::Unavailable(_))), "{outcome:?}");
    let outcome = mailer.send(&Mail::text("not an address", "Hi", "Hi")).await;
    assert!(matches!(outcome, Err(MailError::Refused(_))), "{outcome:?}");
    assert!(SmtpMailer::new("http://example.com", "crm@example.com").is_err());
    assert!(SmtpMailer::new("smtp://127.0.0.1:25", "not a sender").is_err());
    let debug =
        format!("{:?}", SmtpMailer::new("smtp://user:hunter2@127.0.0.1:25", "crm@example.com").unwrap());
    assert!(!debug.contains("hunter2"), "credentials are not shown: {debug}");
}

/// A registration on a CRM that has a mailer enqueues the welcome mail as a `mail.send` job; a
/// runner sends it through SMTP, with the owner's name escaped in the HTML.
#[tokio::test]
async fn registration_sends_a_welcome_through_a_job() {
    let Some((url, maildir)) = smtp_server() else { return };
    let store = crm_storage_sqlite::SqliteStore::open_in_memory().await.expect("a store");
    let mailer = SmtpMailer::new(&url, "CRM <crm@example.com>").expect("a mailer");
    let crm = crm_core::Crm::builder(store).mailer(mailer).build();
    let runner = crm.run_jobs(crm_core::runner::RunnerConfig::default()).expect("a runner");
    let marker = uuid::Uuid::now_v7().simple().to_string();
    let registration = crm_core::Registration {
        email: format!("owner-{marker}@example.com"),
        password: "correct horse battery staple".into(),
        name: "Ann <b>".into(),
        tenant: crm_core::NewTenantInfo {
            name: format!("Acme {marker}"),
            slug: format!("acme-{}", &marker[20..]),
        },
    };
    let session = crm.register(registration).await.expect("registered");

    let message = received(&maildir, &format!("Welcome to Acme {marker}")).await;
    assert!(message.contains(&format!("To: owner-{marker}@example.com")), "{message}");
    assert!(message.contains("Hello Ann &lt;b&gt;,"), "{message}");
    let scope = crm.scope_for(session.tenant.id, session.user.id).await.expect("the owner's scope");
    let jobs = crm.jobs(&scope, None, None, None).await.expect("the tenant's jobs").data;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].job_type, crm_core::mail::SEND_MAIL);
    runner.shutdown().await;
    let done = crm.job(&scope, jobs[0].id).await.unwrap();
    assert_eq!((done.state, done.attempts), (crm_core::job::JobState::Succeeded, 1));
}
