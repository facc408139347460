//! The client's identity and credentials on the command line: one flattened group of flags that
//! every command taking credentials shares (`launch`, `fhir`, `backend token`, `introspect`).
//!
//! One definition means one spelling, one help text and one set of checks: the secret is read
//! from `SMART_CLIENT_SECRET` as well as `--client-secret` everywhere (keeping it out of shell
//! history), an empty secret is refused everywhere, and `--jku` always needs `--key`. Which flags
//! a command needs differs (a launch needs a client id, a backend token a key), so each command
//! asks for what it needs and gets a one-line error naming the missing flag.

use std::path::{Path, PathBuf};

use smart_core::secret::ClientSecret;
use smart_core::{ClientKeys, ClientRegistration};

use crate::session_store::ClientType;

type CliError = Box<dyn std::error::Error + Send + Sync>;

/// The client's identity and credentials.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(id = "credentials", multiple = true)]
pub(crate) struct Credentials {
    /// The client id the EHR assigned.
    #[arg(long)]
    pub(crate) client_id: Option<String>,
    /// The client secret (confidential symmetric clients). Prefer the SMART_CLIENT_SECRET variable.
    #[arg(
        long,
        env = "SMART_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub(crate) client_secret: Option<String>,
    /// The private key of an asymmetric client (PEM or JWK file; see `smart keys generate`).
    #[arg(long)]
    pub(crate) key: Option<PathBuf>,
    /// With --key: send this `jku` (the registered JWKS URL) in assertions.
    #[arg(long, requires = "key")]
    pub(crate) jku: Option<String>,
}

impl Credentials {
    /// `--client-id`, or a one-line error saying it is needed `for_what`.
    pub(crate) fn client_id(&self, for_what: &str) -> Result<&str, CliError> {
        self.client_id.as_deref().ok_or_else(|| {
            format!("--client-id is missing: {for_what} needs the client id the server assigned, e.g. --client-id demo-public").into()
        })
    }

    /// The client secret, refusing an empty one.
    pub(crate) fn secret(&self) -> Result<Option<ClientSecret>, CliError> {
        match self.client_secret.as_deref() {
            Some("") => Err("--client-secret (or SMART_CLIENT_SECRET) is empty; pass the secret the server issued, or leave it out for a public client".into()),
            Some(secret) => Ok(Some(ClientSecret::new(secret))),
            None => Ok(None),
        }
    }

    /// The private key from `--key` with `--jku`, or a one-line error saying it is needed
    /// `for_what`.
    pub(crate) fn keys(&self, for_what: &str) -> Result<ClientKeys, CliError> {
        let path = self.key.as_deref().ok_or_else(|| {
            format!("--key is missing: {for_what} needs the client's private key file (see `smart keys generate`)")
        })?;
        crate::load_keys(path, self.jku.as_deref())
    }

    /// A launching client's registration for `iss`: confidential symmetric with a secret,
    /// asymmetric with `--key`, public with neither.
    pub(crate) fn launch_registration(
        &self,
        iss: &str,
        redirect_uri: &str,
    ) -> Result<(ClientRegistration, ClientType), CliError> {
        let client_id = self.client_id("a launch")?;
        match (self.secret()?, &self.key) {
            (Some(_), Some(_)) => Err("pass --client-secret (or SMART_CLIENT_SECRET) or --key, not both: a client authenticates one way".into()),
            (Some(secret), None) => Ok((
                ClientRegistration::confidential_symmetric(iss, client_id, secret, redirect_uri),
                ClientType::ConfidentialSymmetric,
            )),
            (None, Some(_)) => Ok((
                ClientRegistration::confidential_asymmetric(
                    iss,
                    client_id,
                    self.keys("an asymmetric client")?,
                    redirect_uri,
                ),
                ClientType::ConfidentialAsymmetric,
            )),
            (None, None) => Ok((
                ClientRegistration::public(iss, client_id, redirect_uri),
                ClientType::Public,
            )),
        }
    }

    /// The registration a stored session of `client_type` refreshes with: the stored identity,
    /// and the credential given again on this command line (the store never holds one).
    pub(crate) fn stored_registration(
        &self,
        client_type: ClientType,
        fhir_base: &str,
        client_id: &str,
        redirect_uri: &str,
        jku: Option<&str>,
    ) -> Result<ClientRegistration, CliError> {
        Ok(match client_type {
            ClientType::Public => ClientRegistration::public(fhir_base, client_id, redirect_uri),
            ClientType::ConfidentialSymmetric => {
                let secret = self.secret()?.ok_or("this session belongs to a confidential client: pass --client-secret (or SMART_CLIENT_SECRET) so it can refresh")?;
                ClientRegistration::confidential_symmetric(
                    fhir_base,
                    client_id,
                    secret,
                    redirect_uri,
                )
            }
            ClientType::ConfidentialAsymmetric => {
                let path: &Path = self.key.as_deref().ok_or(
                    "this session belongs to an asymmetric client: pass --key so it can refresh",
                )?;
                ClientRegistration::confidential_asymmetric(
                    fhir_base,
                    client_id,
                    crate::load_keys(path, self.jku.as_deref().or(jku))?,
                    redirect_uri,
                )
            }
        })
    }
}
