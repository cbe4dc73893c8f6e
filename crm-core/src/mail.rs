//! E-mail: what the library sends ([`Mail`]) and the [`Mailer`] trait a host's transport
//! implements (`crm-http`'s `SmtpMailer` speaks SMTP through `lettre`). Nothing here does I/O,
//! so notifications are built and tested in core and sent by whichever mailer the host gives.

use std::fmt;

use crate::error::{Error, Result};

/// One message to one recipient, as plain text and, if given, HTML (a client shows the HTML
/// and falls back to the text).
#[derive(Debug, Clone, PartialEq, Eq)]
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
