//! E-mail: what the library sends ([`Mail`]) and the [`Mailer`] trait a host's transport
//! implements (`crm-http`'s `SmtpMailer` speaks SMTP through `lettre`). Nothing here does I/O,
//! so notifications are built and tested in core and sent by whichever mailer the host gives.

use std::fmt;

use crate::error::{Error, Result};

/// One message to one recipient, as plain text and, if given, HTML (a client shows the HTML
/// and falls back to the text). It is also the payload of a `mail.send` job, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body, already escaped where it holds data ([`escape_html`]).
    pub html: Option<String>,
}

impl Mail {
    /// A plain-text message.
    pub fn text(to: impl Into<String>, subject: impl Into<String>, text: impl Into<String>) -> Self {
        Mail { to: to.into(), subject: subject.into(), text: text.into(), html: None }
    }

    /// Adds an HTML body.
    pub fn with_html(mut self, html: impl Into<String>) -> Self {
        self.html = Some(html.into());
        self
    }

    /// Checks what a transport would otherwise refuse late: an address, and a subject of one
    /// line (a line break in it would start a header).
    pub fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        if !crate::validate::is_email(&self.to) {
            errors.push(crate::FieldError::new("to", "must be an e-mail address"));
        }
        if self.subject.chars().any(char::is_control) || self.subject.trim().is_empty() {
            errors.push(crate::FieldError::new("subject", "must be one line, not blank"));
        }
        if errors.is_empty() { Ok(()) } else { Err(Error::Validation(errors)) }
    }
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// The server refused it for good (an unknown recipient, a message it will not take):
    /// sending it again cannot help.
    #[error("refused: {0}")]
    Refused(String),
    /// The server could not be reached or answered with a temporary failure: worth a retry.
    #[error("not sent for now: {0}")]
    Unavailable(String),
}

/// Sends mail. Implementations are cheap to share (`Arc`) and safe to call concurrently.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + fmt::Debug + 'static {
    /// Sends one message, or says why it was not sent.
    async fn send(&self, mail: &Mail) -> std::result::Result<(), MailError>;
}

/// The job type that sends one [`Mail`] through the CRM's [`Mailer`]
/// ([`crate::CrmBuilder::mailer`]): at least once, retried while the server is unavailable.
pub const SEND_MAIL: &str = "mail.send";

/// The `mail.send` job's handler.
#[derive(Debug)]
pub(crate) struct SendMail(pub(crate) std::sync::Arc<dyn Mailer>);

#[async_trait::async_trait]
impl crate::runner::JobHandler for SendMail {
    async fn run(&self, ctx: crate::runner::JobContext) -> std::result::Result<(), crate::job::Failure> {
        use crate::job::Failure;
        let mail: Mail = serde_json::from_value(ctx.job.payload.clone())
            .map_err(|e| Failure::permanent(format!("not a mail: {e}")))?;
        self.0.send(&mail).await.map_err(|e| match e {
            MailError::Refused(_) => Failure::permanent(e.to_string()),
            MailError::Unavailable(_) => Failure::transient(e.to_string()),
        })
    }
}

/// How `mail.send` jobs retry: from 30 s doubling to an hour, 12 attempts (about six hours), a
/// minute per attempt.
pub(crate) fn send_mail_options() -> crate::runner::JobOptions {
    crate::runner::JobOptions {
        retry: crate::job::RetryPolicy {
            base: std::time::Duration::from_secs(30),
            max_delay: std::time::Duration::from_secs(3600),
            max_attempts: 12,
        },
        timeout: std::time::Duration::from_secs(60),
    }
}

/// The welcome message to a new tenant's owner.
pub fn welcome(to: &str, name: &str, tenant: &str) -> Mail {
    let subject = format!("Welcome to {tenant}");
    let text = format!(
        "Hello {name},\n\nyour workspace {tenant} is ready, and you are its owner. \
         Invite your team from its settings.\n"
    );
    let html = format!(
        "<p>Hello {},</p><p>your workspace <b>{}</b> is ready, and you are its owner. \
         Invite your team from its settings.</p>",
        escape_html(name),
        escape_html(tenant)
    );
    Mail::text(to, subject.replace(['\r', '\n'], " "), text).with_html(html)
}

/// The notice to an endpoint's creator that deliveries to it stopped, and why.
pub fn webhook_disabled(to: &str, name: &str, url: &str, reason: &str) -> Mail {
    let text = format!(
        "Hello {name},\n\nthe webhook endpoint {url} you created was disabled: {reason}. \
         Events are no longer delivered to it. Fix the receiver, then enable the endpoint again.\n"
    );
    let html = format!(
        "<p>Hello {},</p><p>the webhook endpoint <code>{}</code> you created was disabled: {}. \
         Events are no longer delivered to it. Fix the receiver, then enable the endpoint again.</p>",
        escape_html(name),
        escape_html(url),
        escape_html(reason)
    );
    Mail::text(to, "A webhook endpoint was disabled", text).with_html(html)
}

/// `text` with `& < > " '` as HTML character references, so data put into an HTML body (a
/// lead's name, a deal's title) is shown, never read as markup.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_data_is_escaped() {
        assert_eq!(
            escape_html(r#"<b>"Ann" & 'Bo'</b>"#),
            "&lt;b&gt;&quot;Ann&quot; &amp; &#39;Bo&#39;&lt;/b&gt;"
        );
        assert_eq!(escape_html("Zoë"), "Zoë");
    }

    #[test]
    fn the_welcome_mail_escapes_what_the_owner_typed() {
        let mail = welcome("ann@example.com", "Ann <b>", "Acme & \"Sons\"");
        assert_eq!(mail.subject, "Welcome to Acme & \"Sons\"");
        assert!(mail.text.contains("Hello Ann <b>,"));
        let html = mail.html.clone().unwrap();
        assert!(html.contains("Hello Ann &lt;b&gt;,") && html.contains("<b>Acme &amp; &quot;Sons&quot;</b>"));
        assert!(mail.validate().is_ok());
    }

    #[test]
    fn mail_is_checked_before_it_is_sent() {
        assert!(Mail::text("ann@example.com", "Welcome", "Hi").validate().is_ok());
        let fields = |mail: Mail| -> Vec<String> {
            mail.validate().unwrap_err().field_errors().iter().map(|f| f.field.clone()).collect()
        };
        assert_eq!(fields(Mail::text("not an address", "Hi", "")), ["to"]);
        assert_eq!(fields(Mail::text("ann@example.com", "Hi\r\nBcc: eve@example.com", "")), ["subject"]);
        assert_eq!(fields(Mail::text("ann@example.com", "  ", "")), ["subject"]);
    }
}
