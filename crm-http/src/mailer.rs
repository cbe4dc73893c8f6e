//! [`SmtpMailer`]: the [`Mailer`] that sends over SMTP with `lettre`, beside the webhook client
//! so that `crm-core` stays free of network I/O.

use crm_core::mail::{Mail, MailError, Mailer};
use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Sends mail through one SMTP server, from one sender.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds the credentials: not shown.
        f.debug_struct("SmtpMailer").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for `url` sending as `from` (`CRM <crm@example.com>`). The URL says how to
    /// connect: `smtps://user:pass@host:465` (TLS), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS, refused if the server does not offer it), `smtp://host:25` (plain, for a relay
    /// on the same machine or tests). User and password are URL-encoded.
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("the SMTP URL is not usable: {e}"))?
            .build();
        let from = from.parse::<Mailbox>().map_err(|e| format!("the sender is not an address: {e}"))?;
        Ok(SmtpMailer { transport, from })
    }

    fn message(&self, mail: &Mail) -> Result<Message, MailError> {
        let to = mail.to.parse::<Mailbox>().map_err(|e| MailError::Refused(format!("recipient: {e}")))?;
        let builder = Message::builder().from(self.from.clone()).to(to).subject(mail.subject.clone());
        let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(mail.text.clone());
        let built = match &mail.html {
            Some(html) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(text)
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html.clone())),
            ),
            None => builder.singlepart(text),
        };
        built.map_err(|e| MailError::Refused(format!("the message: {e}")))
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = self.message(mail)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Refused(e.to_string())),
            Err(e) => Err(MailError::Unavailable(e.to_string())),
        }
    }
}
