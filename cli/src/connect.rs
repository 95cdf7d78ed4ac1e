//! Connecting the way psql does: a connection string or URL, else the `PG*` environment
//! variables and `~/.pgpass`, the local socket directory first; `sslmode` from `disable` to
//! `verify-full` (TLS by rustls).

use postgres::config::SslMode;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// How much of the server's certificate is verified (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    Disable,
    /// `allow` / `prefer`: TLS when the server offers it, certificate not verified.
    Prefer,
    /// TLS required, certificate not verified.
    Require,
    /// TLS, certificate chain verified against the root certificates.
    VerifyCa,
    /// TLS, chain and host name verified.
    VerifyFull,
}

impl Tls {
    fn parse(s: &str) -> Result<Tls, String> {
        Ok(match s {
            "disable" => Tls::Disable,
            "allow" | "prefer" => Tls::Prefer,
            "require" => Tls::Require,
            "verify-ca" => Tls::VerifyCa,
            "verify-full" => Tls::VerifyFull,
            other => return Err(format!("invalid sslmode \"{other}\"")),
        })
    }
}

/// Everything needed to connect, decided before any network traffic.
pub struct Settings {
    pub config: postgres::Config,
    pub tls: Tls,
    pub root_cert: Option<PathBuf>,
}

/// The environment the settings are read from (a map in tests).
pub struct Env {
    pub vars: HashMap<String, String>,
    pub home: Option<PathBuf>,
    /// Whether a socket file exists (`/var/run/postgresql/.s.PGSQL.5432`).
    pub socket_exists: fn(&Path) -> bool,
}

impl Env {
    pub fn current() -> Env {
        Env {
            vars: std::env::vars().collect(),
            home: std::env::var_os("HOME").map(PathBuf::from),
            socket_exists: |p| p.exists(),
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// Remove `keys` from a connection string or URL (options the client library does not know),
/// returning their values.
fn take_options(conn: &str, keys: &[&str]) -> (String, HashMap<String, String>) {
    let mut taken = HashMap::new();
    if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        let Some((base, query)) = conn.split_once('?') else {
            return (conn.to_owned(), taken);
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                if keys.contains(&k) {
                    taken.insert(k.to_owned(), v.to_owned());
                    false
                } else {
                    true
                }
            })
            .collect();
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return (rest, taken);
    }
    // key = value pairs; values may be single-quoted with backslash escapes.
    let mut rest = String::new();
    let mut chars = conn.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == '=') {
            chars.next();
        }
        let mut raw = String::new();
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            raw.push(chars.next().unwrap_or('\''));
            while let Some(c) = chars.next() {
                raw.push(c);
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            raw.push(n);
                            value.push(n);
                        }
                    }
                    '\'' => break,
                    _ => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                raw.push(c);
                value.push(c);
                chars.next();
            }
        }
        if keys.contains(&key.as_str()) {
            taken.insert(key, value);
        } else {
            rest.push_str(&format!("{key}={raw} "));
        }
    }
    (rest.trim_end().to_owned(), taken)
}

/// The connection settings from `--database-url` (or `DATABASE_URL`) and the environment;
/// what the URL leaves out comes from the `PG*` variables, then from libpq's defaults.
pub fn settings(url: Option<&str>, env: &Env) -> Result<Settings, String> {
    let (rest, options) = take_options(url.unwrap_or(""), &["sslmode", "sslrootcert"]);
    let mut config = if rest.trim().is_empty() {
        postgres::Config::new()
    } else {
        postgres::Config::from_str(&rest).map_err(|e| format!("invalid --database-url: {e}"))?
    };
    if config.get_ports().is_empty() {
        let port = match env.var("PGPORT") {
            Some(p) => p.parse::<u16>().map_err(|_| format!("invalid PGPORT \"{p}\""))?,
            None => 5432,
        };
        config.port(port);
    }
    let port = config.get_ports()[0];
    if config.get_hosts().is_empty() {
        match env.var("PGHOST") {
            Some(hosts) => {
                for h in hosts.split(',') {
                    config.host(h.trim());
                }
            }
            None => {
                // libpq's default: the local socket directory (Debian's, then the usual one),
                // else TCP to localhost.
                let dir = ["/var/run/postgresql", "/tmp"]
                    .into_iter()
                    .find(|d| (env.socket_exists)(&Path::new(d).join(format!(".s.PGSQL.{port}"))));
                config.host(dir.unwrap_or("localhost"));
            }
        }
    }
    if config.get_user().is_none() {
        let user = env
            .var("PGUSER")
            .or_else(|| env.var("USER"))
            .or_else(|| env.var("LOGNAME"))
            .unwrap_or("postgres")
            .to_owned();
        config.user(&user);
    }
    let user = config.get_user().unwrap_or_default().to_owned();
    if config.get_dbname().is_none() {
        config.dbname(env.var("PGDATABASE").unwrap_or(&user));
    }
    if config.get_password().is_none() {
        if let Some(p) = env.var("PGPASSWORD") {
            config.password(p);
        } else if let Some(p) = pgpass_password(&config, env) {
            config.password(&p);
        }
    }
    if config.get_application_name().is_none() {
        config.application_name(env.var("PGAPPNAME").unwrap_or("migrate-guard"));
    }
    if config.get_connect_timeout().is_none() {
        let secs = env
            .var("PGCONNECT_TIMEOUT")
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(10);
        config.connect_timeout(Duration::from_secs(secs.max(2)));
    }
    let tls = Tls::parse(
        options
            .get("sslmode")
            .map(String::as_str)
            .or_else(|| env.var("PGSSLMODE"))
            .unwrap_or("prefer"),
    )?;
    config.ssl_mode(match tls {
        Tls::Disable => SslMode::Disable,
        Tls::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    });
    let root_cert = options
        .get("sslrootcert")
        .map(String::as_str)
        .or_else(|| env.var("PGSSLROOTCERT"))
        .map(PathBuf::from)
        .or_else(|| {
            let default = env.home.as_ref()?.join(".postgresql/root.crt");
            default.exists().then_some(default)
        })
        .filter(|p| p.as_os_str() != "system");
    Ok(Settings { config, tls, root_cert })
}

/// The password for these settings from the password file (`PGPASSFILE` or `~/.pgpass`), as
/// libpq looks it up: the first line whose host, port, database and user match (`*` matches
/// anything; a socket directory matches `localhost`).
fn pgpass_password(config: &postgres::Config, env: &Env) -> Option<String> {
    let path = match env.var("PGPASSFILE") {
        Some(p) => PathBuf::from(p),
        None => env.home.as_ref()?.join(".pgpass"),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first()? {
        postgres::config::Host::Tcp(h) => h.clone(),
        #[cfg(unix)]
        postgres::config::Host::Unix(_) => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432).to_string();
    let wanted = [
        host.as_str(),
        port.as_str(),
        config.get_dbname().unwrap_or_default(),
        config.get_user().unwrap_or_default(),
    ];
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields = pgpass_fields(line);
            if fields.len() != 5 {
                return None;
            }
            let matches = fields[..4].iter().zip(wanted).all(|(f, w)| f == "*" || f == w);
            matches.then(|| fields[4].clone())
        })
}

/// The five `:`-separated fields of a `.pgpass` line (`\:` and `\\` are escapes).
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields.last_mut().expect("one field at least").push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("one field at least").push(c),
        }
    }
    fields
}

/// Connect with the settings from `url` and the environment.
pub fn connect(url: Option<&str>) -> Result<postgres::Client, String> {
    let s = settings(url, &Env::current())?;
    let describe = |e: postgres::Error| {
        // The library's message names the step; its source says what went wrong.
        let mut cause = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            cause.push_str(": ");
            cause.push_str(&s.to_string());
            source = s.source();
        }
        let hosts: Vec<String> = s
            .config
            .get_hosts()
            .iter()
            .map(|h| match h {
                postgres::config::Host::Tcp(h) => h.clone(),
                #[cfg(unix)]
                postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        format!(
            "cannot connect to {} port {} as {} (database {}): {cause}",
            hosts.join(","),
            s.config.get_ports().first().copied().unwrap_or(5432),
            s.config.get_user().unwrap_or_default(),
            s.config.get_dbname().unwrap_or_default()
        )
    };
    // Like libpq, no TLS over a Unix-domain socket (the server would refuse it anyway).
    #[cfg(unix)]
    let local = s
        .config
        .get_hosts()
        .iter()
        .all(|h| matches!(h, postgres::config::Host::Unix(_)));
    #[cfg(not(unix))]
    let local = false;
    if s.tls == Tls::Disable || local {
        let mut config = s.config.clone();
        config.ssl_mode(SslMode::Disable);
        return config.connect(postgres::NoTls).map_err(describe);
    }
    let tls = tls_connector(s.tls, s.root_cert.as_deref())?;
    s.config.connect(tls).map_err(describe)
}

fn tls_connector(mode: Tls, root_cert: Option<&Path>) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls::client::WebPkiServerVerifier;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let config = match mode {
        Tls::Disable | Tls::Prefer | Tls::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verify::Unverified(provider)))
            .with_no_client_auth(),
        Tls::VerifyCa | Tls::VerifyFull => {
            let roots = Arc::new(root_store(root_cert)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| format!("TLS setup failed: {e}"))?;
            if mode == Tls::VerifyFull {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verify::AnyName(webpki)))
                    .with_no_client_auth()
            }
        }
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Root certificates: the `sslrootcert` file, else the system's.
fn root_store(root_cert: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    let mut store = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| format!("invalid sslrootcert {}: {e}", path.display()))?;
                store
                    .add(cert)
                    .map_err(|e| format!("invalid sslrootcert {}: {e}", path.display()))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = store.add(cert);
            }
        }
    }
    if store.is_empty() {
        return Err("no root certificate to verify the server with (set sslrootcert)".into());
    }
    Ok(store)
}

/// Certificate verifiers for libpq's weaker modes.
mod verify {
    use rustls::DigitallySignedStruct;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use std::sync::Arc;

    /// `prefer` / `require`: encrypted, the certificate taken as it is (libpq does the same).
    /// The handshake signatures are still checked.
    #[derive(Debug)]
    pub struct Unverified(pub Arc<CryptoProvider>);

    impl ServerCertVerifier for Unverified {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// `verify-ca`: the chain must lead to a trusted root; the host name is not compared.
    #[derive(Debug)]
    pub struct AnyName(pub Arc<WebPkiServerVerifier>);

    impl ServerCertVerifier for AnyName {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            use rustls::CertificateError as C;
            match self
                .0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            {
                Err(rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. })) => {
                    Ok(ServerCertVerified::assertion())
                }
                other => other,
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.supported_verify_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)], sockets: fn(&Path) -> bool) -> Env {
        Env {
            vars: vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            home: None,
            socket_exists: sockets,
        }
    }

    fn host(s: &Settings) -> String {
        match &s.config.get_hosts()[0] {
            postgres::config::Host::Tcp(h) => h.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        }
    }

    #[test]
    fn environment_fills_what_the_url_leaves_out() {
        let e = env(
            &[
                ("PGHOST", "db1"),
                ("PGPORT", "6543"),
                ("PGUSER", "ci"),
                ("PGDATABASE", "app"),
            ],
            |_| false,
        );
        let s = settings(None, &e).unwrap();
        assert_eq!((host(&s).as_str(), s.config.get_ports()[0]), ("db1", 6543));
        assert_eq!(s.config.get_user(), Some("ci"));
        assert_eq!(s.config.get_dbname(), Some("app"));
        assert_eq!(s.tls, Tls::Prefer);
        let s = settings(
            Some("postgresql://deploy@replica:5433/prod?sslmode=verify-full&sslrootcert=/ca.pem"),
            &e,
        )
        .unwrap();
        assert_eq!((host(&s).as_str(), s.config.get_ports()[0]), ("replica", 5433));
        assert_eq!(s.config.get_user(), Some("deploy"));
        assert_eq!(s.config.get_dbname(), Some("prod"));
        assert_eq!(s.tls, Tls::VerifyFull);
        assert_eq!(s.root_cert.as_deref(), Some(Path::new("/ca.pem")));
        let s = settings(Some("host=/run/pg port=5999 dbname='my db' sslmode=disable"), &e).unwrap();
        assert_eq!(host(&s), "/run/pg");
        assert_eq!(s.config.get_dbname(), Some("my db"));
        assert_eq!(s.tls, Tls::Disable);
    }

    #[test]
    fn defaults_are_libpqs() {
        let s = settings(None, &env(&[("USER", "alice")], |p| p.starts_with("/tmp"))).unwrap();
        assert_eq!(host(&s), "/tmp");
        assert_eq!(s.config.get_ports()[0], 5432);
        assert_eq!(s.config.get_user(), Some("alice"));
        assert_eq!(s.config.get_dbname(), Some("alice"));
        let s = settings(None, &env(&[], |_| false)).unwrap();
        assert_eq!(host(&s), "localhost");
        assert!(settings(None, &env(&[("PGSSLMODE", "sometimes")], |_| false)).is_err());
        assert!(settings(None, &env(&[("PGPORT", "x")], |_| false)).is_err());
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        assert_eq!(
            pgpass_fields(r"db\:1:5432:*:ci:p\:w"),
            vec!["db:1", "5432", "*", "ci", "p:w"]
        );
        let dir = std::env::temp_dir().join(format!("mg-pgpass-{}", std::process::id()));
        std::fs::write(&dir, "# comment\nother:5432:*:ci:no\n*:6543:app:ci:secret\n").unwrap();
        let e = env(
            &[
                ("PGHOST", "db1"),
                ("PGPORT", "6543"),
                ("PGUSER", "ci"),
                ("PGDATABASE", "app"),
                ("PGPASSFILE", dir.to_str().unwrap()),
            ],
            |_| false,
        );
        let s = settings(None, &e).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(s.config.get_password(), Some(&b"secret"[..]));
    }
}
