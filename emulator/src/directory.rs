//! The Entra directory: Graph applications with their password credentials, and service
//! principals. Secret values are never stored: each credential keeps a salted hash, and the
//! value is returned exactly once, by `addPassword`.

use std::collections::HashMap;

use azure_model::graph::{Application, PasswordCredential, ServicePrincipal};
use time::{Duration, OffsetDateTime};

use crate::credential::{Secret, SecretHash};

/// How a client secret compares with an application's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretCheck {
    /// The secret matches a credential valid now; the app's service principal object id.
    Valid { service_principal: Option<String> },
    /// The secret matches a credential whose validity ended (or has not started).
    Expired,
    /// The secret matches no credential of the app.
    Wrong,
    /// No application has that client id.
    UnknownApp,
}

#[derive(Debug, Clone)]
struct AppRecord {
    app: Application,
    hashes: HashMap<String, SecretHash>,
}

/// Applications and service principals.
#[derive(Debug, Clone, Default)]
pub(crate) struct Directory {
    apps: Vec<AppRecord>,
    service_principals: Vec<ServicePrincipal>,
    /// Client ids of the emulator's own applications (the operator), left out of exports.
    internal: Vec<String>,
    /// Client ids of read-only identities (what engines get): Reader on the subscription,
    /// Graph read, pull on registries; never exported.
    readers: Vec<String>,
}

/// Why a directory change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DirectoryError {
    /// No such application (by object id or client id).
    NoSuchApplication(String),
    /// The application has no credential with that key id.
    NoSuchKey(String),
    /// A service principal for the app already exists.
    ServicePrincipalExists(String),
}

/// Formats a time as Graph does (`2021-09-09T19:50:29.3086381Z`).
pub(crate) fn graph_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]Z");
    t.format(&fmt).unwrap_or_default()
}

impl Directory {
    /// Loads applications (their credentials cannot be used: the secrets were never exported)
    /// and service principals.
    pub fn import(apps: &[Application], sps: &[ServicePrincipal]) -> Self {
        let apps = apps
            .iter()
            .map(|a| {
                let mut app = a.clone();
                for c in &mut app.password_credentials {
                    c.secret_text = None;
                }
                AppRecord { app, hashes: HashMap::new() }
            })
            .collect();
        Self { apps, service_principals: sps.to_vec(), internal: Vec::new(), readers: Vec::new() }
    }

    /// Marks the application with client id `app_id` as the emulator's own (not exported).
    pub fn mark_internal(&mut self, app_id: &str) {
        self.internal.push(app_id.to_ascii_lowercase());
    }

    /// Marks the application with client id `app_id` as a read-only identity (not exported).
    pub fn mark_reader(&mut self, app_id: &str) {
        self.readers.push(app_id.to_ascii_lowercase());
    }

    fn is_internal(&self, app_id: &str) -> bool {
        let id = app_id.to_ascii_lowercase();
        self.internal.contains(&id) || self.readers.contains(&id)
    }

    /// Whether service principal `object_id` belongs to one of the emulator's own applications
    /// (the operator, which stands for the subscription's Owner).
    pub fn is_internal_principal(&self, object_id: &str) -> bool {
        self.service_principal(object_id).is_some_and(|sp| self.internal.contains(&sp.app_id.to_ascii_lowercase()))
    }

    /// Whether service principal `object_id` is a read-only identity.
    pub fn is_reader_principal(&self, object_id: &str) -> bool {
        self.service_principal(object_id).is_some_and(|sp| self.readers.contains(&sp.app_id.to_ascii_lowercase()))
    }

    /// Applications as exported (without the emulator's own).
    pub fn exported_applications(&self) -> Vec<Application> {
        self.apps.iter().filter(|r| !self.is_internal(&r.app.app_id)).map(|r| r.app.clone()).collect()
    }

    /// Service principals as exported (without the emulator's own).
    pub fn exported_service_principals(&self) -> Vec<ServicePrincipal> {
        self.service_principals.iter().filter(|s| !self.is_internal(&s.app_id)).cloned().collect()
    }

    pub fn applications(&self) -> Vec<Application> {
        self.apps.iter().map(|r| r.app.clone()).collect()
    }

    pub fn service_principals(&self) -> &[ServicePrincipal] {
        &self.service_principals
    }

    /// Creates an application; with `service_principal`, also its service principal (as the
    /// portal does; Graph's `POST /applications` does not).
    pub fn create_application(&mut self, display_name: &str, service_principal: bool) -> Application {
        let app = Application {
            id: uuid::Uuid::new_v4().to_string(),
            app_id: uuid::Uuid::new_v4().to_string(),
            display_name: Some(display_name.to_string()),
            password_credentials: Vec::new(),
        };
        self.apps.push(AppRecord { app: app.clone(), hashes: HashMap::new() });
        if service_principal {
            // A fresh app id cannot have a service principal yet.
            let _ = self.create_service_principal(&app.app_id);
        }
        app
    }

    /// Finds an application by object id or by client id.
    pub fn application(&self, object_or_app_id: &str) -> Option<&Application> {
        self.record(object_or_app_id).map(|r| &r.app)
    }

    fn record(&self, key: &str) -> Option<&AppRecord> {
        self.apps.iter().find(|r| r.app.id.eq_ignore_ascii_case(key) || r.app.app_id.eq_ignore_ascii_case(key))
    }

    fn record_mut(&mut self, key: &str) -> Option<&mut AppRecord> {
        self.apps.iter_mut().find(|r| r.app.id.eq_ignore_ascii_case(key) || r.app.app_id.eq_ignore_ascii_case(key))
    }

    /// Adds a password credential; the answer carries `secretText`, which is not kept.
    pub fn add_password(
        &mut self,
        app: &str,
        display_name: Option<String>,
        start: Option<OffsetDateTime>,
        end: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<PasswordCredential, DirectoryError> {
        let record = self.record_mut(app).ok_or_else(|| DirectoryError::NoSuchApplication(app.to_string()))?;
        let secret = Secret::generate_client_secret();
        let start = start.unwrap_or(now);
        let end = end.unwrap_or(now + Duration::days(730));
        let key_id = uuid::Uuid::new_v4().to_string();
        let mut cred = PasswordCredential {
            key_id: Some(key_id.clone()),
            display_name,
            start_date_time: Some(graph_time(start)),
            end_date_time: Some(graph_time(end)),
            hint: Some(secret.expose()[..3].to_string()),
            secret_text: None,
        };
        record.hashes.insert(key_id, SecretHash::of(secret.expose()));
        record.app.password_credentials.push(cred.clone());
        cred.secret_text = Some(secret.expose().to_string());
        Ok(cred)
    }

    /// Removes the credential `key_id`.
    pub fn remove_password(&mut self, app: &str, key_id: &str) -> Result<(), DirectoryError> {
        let record = self.record_mut(app).ok_or_else(|| DirectoryError::NoSuchApplication(app.to_string()))?;
        let before = record.app.password_credentials.len();
        record
            .app
            .password_credentials
            .retain(|c| !c.key_id.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(key_id)));
        if record.app.password_credentials.len() == before {
            return Err(DirectoryError::NoSuchKey(key_id.to_string()));
        }
        record.hashes.retain(|k, _| !k.eq_ignore_ascii_case(key_id));
        Ok(())
    }

    /// Changes the validity window of credential `key_id` (admin helper: expire a secret).
    pub fn set_password_validity(
        &mut self,
        app: &str,
        key_id: &str,
        start: Option<OffsetDateTime>,
        end: Option<OffsetDateTime>,
    ) -> Result<(), DirectoryError> {
        let record = self.record_mut(app).ok_or_else(|| DirectoryError::NoSuchApplication(app.to_string()))?;
        let cred = record
            .app
            .password_credentials
            .iter_mut()
            .find(|c| c.key_id.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(key_id)))
            .ok_or_else(|| DirectoryError::NoSuchKey(key_id.to_string()))?;
        if let Some(s) = start {
            cred.start_date_time = Some(graph_time(s));
        }
        if let Some(e) = end {
            cred.end_date_time = Some(graph_time(e));
        }
        Ok(())
    }

    /// Sets the end of validity of every password credential of `app`.
    pub fn set_secret_expiry(&mut self, app: &str, end: OffsetDateTime) -> Result<usize, DirectoryError> {
        let record = self.record_mut(app).ok_or_else(|| DirectoryError::NoSuchApplication(app.to_string()))?;
        for c in &mut record.app.password_credentials {
            c.end_date_time = Some(graph_time(end));
        }
        Ok(record.app.password_credentials.len())
    }

    /// Compares a client secret with the credentials of the app with client id `app_id`.
    pub fn check_secret(&self, app_id: &str, secret: &str, now: OffsetDateTime) -> SecretCheck {
        let Some(record) = self.apps.iter().find(|r| r.app.app_id.eq_ignore_ascii_case(app_id)) else {
            return SecretCheck::UnknownApp;
        };
        let matching = record
            .app
            .password_credentials
            .iter()
            .find(|c| c.key_id.as_deref().and_then(|k| record.hashes.get(k)).is_some_and(|h| h.matches(secret)));
        match matching {
            None => SecretCheck::Wrong,
            Some(c) if !c.is_valid_at(now) => SecretCheck::Expired,
            Some(_) => {
                SecretCheck::Valid { service_principal: self.service_principal_of(app_id).map(|sp| sp.id.clone()) }
            }
        }
    }

    /// The service principal of the app with client id `app_id`.
    pub fn service_principal_of(&self, app_id: &str) -> Option<&ServicePrincipal> {
        self.service_principals.iter().find(|s| s.app_id.eq_ignore_ascii_case(app_id))
    }

    /// The service principal with object id `id`.
    pub fn service_principal(&self, id: &str) -> Option<&ServicePrincipal> {
        self.service_principals.iter().find(|s| s.id.eq_ignore_ascii_case(id))
    }

    /// Creates the service principal of an existing application.
    pub fn create_service_principal(&mut self, app_id: &str) -> Result<ServicePrincipal, DirectoryError> {
        let app = self.application(app_id).ok_or_else(|| DirectoryError::NoSuchApplication(app_id.to_string()))?;
        if self.service_principal_of(&app.app_id).is_some() {
            return Err(DirectoryError::ServicePrincipalExists(app.app_id.clone()));
        }
        let sp = ServicePrincipal {
            id: uuid::Uuid::new_v4().to_string(),
            app_id: app.app_id.clone(),
            display_name: app.display_name.clone(),
        };
        self.service_principals.push(sp.clone());
        Ok(sp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_lifecycle() {
        let now = time::macros::datetime!(2026-06-01 0:00 UTC);
        let mut d = Directory::default();
        let app = d.create_application("cluster-sp", true);
        let cred = d.add_password(&app.id, Some("k".into()), None, Some(now + Duration::days(1)), now).unwrap();
        let secret = cred.secret_text.clone().unwrap();
        assert!(d.application(&app.app_id).unwrap().password_credentials[0].secret_text.is_none());
        assert!(matches!(d.check_secret(&app.app_id, &secret, now), SecretCheck::Valid { service_principal: Some(_) }));
        assert_eq!(d.check_secret(&app.app_id, "wrong", now), SecretCheck::Wrong);
        assert_eq!(d.check_secret(&app.app_id, &secret, now + Duration::days(2)), SecretCheck::Expired);
        assert_eq!(d.check_secret("nope", &secret, now), SecretCheck::UnknownApp);
        d.remove_password(&app.id, cred.key_id.as_deref().unwrap()).unwrap();
        assert_eq!(d.check_secret(&app.app_id, &secret, now), SecretCheck::Wrong);
        assert!(graph_time(now).ends_with(".0000000Z"));
    }
}
