//! `totpctl enroll USER`: a new secret, shown as a URI and a QR code, saved as
//! a `.jpg`, stored as a pending record; then a code from the app activates it.

use crate::cli::EnrollArgs;
use crate::context::{self, Context, Invocation};
use crate::error::CliError;
use crate::privilege::AsRealUser;
use crate::{prompt, qr, qrfile, uri};
use totp_core::enrollment;
use totp_core::otp::{Algorithm, OtpParams};
use totp_core::record::{Status, UserRecord};
use totp_core::secret::SecretBytes;
use totp_core::time::now_unix;

pub fn run(inv: &Invocation, args: &EnrollArgs) -> Result<(), CliError> {
    // 1. Everything that can be checked without touching the store.
    let ctx = Context::load("enroll", inv)?;
    let target = ctx.target("enroll", args.user.as_deref())?;
    let (user, account) = context::system_user(target.as_str())?;
    let self_service = ctx.self_user().is_some();
    let qr_path = args
        .qr
        .clone()
        .unwrap_or_else(|| qrfile::default_path(user.as_str()));
    {
        // A self-service caller may only learn about paths they can see.
        let _as_user = self_service
            .then(AsRealUser::new)
            .transpose()
            .map_err(|e| CliError::QrWrite(qr_path.clone(), e))?;
        qrfile::check(&qr_path, args.force)?;
    }
    let defaults = &ctx.config.otp;
    let params = OtpParams::new(
        args.algorithm.unwrap_or(defaults.algorithm),
        args.digits.unwrap_or(defaults.digits),
        args.period.unwrap_or(defaults.period),
    )
    .map_err(|e| CliError::Output("the record".into(), std::io::Error::other(e)))?;
    let issuer = match &args.issuer {
        Some(issuer) => issuer.clone(),
        None if !ctx.config.enroll.issuer.is_empty() => ctx.config.enroll.issuer.clone(),
        None => host_name(),
    };

    // A self-service caller replacing an active enrollment proves it first;
    // the answer is read before the lock, and checked under it.
    let proof = match ctx.load_record(&user) {
        Ok(Some(existing)) if self_service && existing.status == Status::Active && args.force => {
            Some(super::read_proof(&ctx, &user)?)
        }
        Err(CliError::CorruptRecord { .. }) if self_service => {
            return Err(CliError::CorruptOwnRecord)
        }
        _ => None,
    };

    // 2. The new secret, and the .jpg, written before the user's lock is
    //    taken: the lock is never held across a write outside the store.
    let now = now_unix();
    let record = UserRecord {
        status: Status::Pending,
        secret: SecretBytes::generate()?,
        params,
        label: Some(user.to_string()),
        issuer: (!issuer.is_empty()).then(|| issuer.clone()),
        created_at: Some(now),
        activated_at: None,
        recovery: Vec::new(),
    };
    // The one rule for labels is the record parser's: check by a round trip
    // before the .jpg is written.
    let text = record
        .to_toml()
        .map_err(|e| CliError::Output("the record".into(), std::io::Error::other(e)))?;
    if let Err(e) = UserRecord::parse(&text) {
        return Err(CliError::InvalidIssuer(e));
    }
    drop(text);
    let link = uri::otpauth(
        &issuer,
        user.as_str(),
        &record.secret.to_base32(),
        record.params,
    );
    let jpeg = qr::jpeg(&link)?;
    let terminal = qr::terminal(&link)?;
    // For a self-service caller the .jpg is opened with their own identity:
    // it cannot land anywhere they could not write to themselves.
    let remove_qr = || {
        let _as_user = self_service.then(AsRealUser::new).transpose();
        qrfile::remove(&qr_path, &account);
    };
    {
        let _as_user = self_service
            .then(AsRealUser::new)
            .transpose()
            .map_err(|e| CliError::QrWrite(qr_path.clone(), e))?;
        qrfile::write(&qr_path, &jpeg, &account, args.force)?;
    }

    // 3. Under the user's lock: refuse to replace what must not be replaced,
    //    check the proof, install the pending record. A refusal removes the
    //    .jpg of the secret that was never installed.
    let installed = (|| {
        ctx.ensure_dirs()?;
        let lock = ctx.lock(&user)?;
        match ctx.load_record(&user) {
            Ok(Some(existing)) if existing.status == Status::Active && !args.force => {
                return Err(CliError::AlreadyActive {
                    user: user.to_string(),
                    command: "enroll",
                });
            }
            Ok(Some(existing)) if existing.status == Status::Active && self_service => {
                let proof = proof.as_deref().map(|p| &p[..]);
                if let Err(failed) = super::check_proof(&ctx, &lock, &existing, &user, proof) {
                    drop(lock);
                    return Err(failed.finish(&ctx));
                }
            }
            Ok(_) => {}
            Err(CliError::CorruptRecord { .. }) if self_service => {
                return Err(CliError::CorruptOwnRecord)
            }
            Err(CliError::CorruptRecord { .. }) if args.force => {}
            Err(e) => return Err(e),
        }
        enrollment::install(&lock, &record)?;
        Ok(())
    })();
    if let Err(e) = installed {
        remove_qr();
        return Err(e);
    }
    ctx.audit_self("enroll", &user, "");

    // 3. Show it.
    for warning in app_warnings(params) {
        eprintln!("totpctl: warning: {warning}");
    }
    println!(
        "Enrolling '{user}': {}, {} digits, {} s.",
        params.algorithm, params.digits, params.period
    );
    println!("Scan this QR code with the authenticator app:");
    println!();
    print!("{}", terminal.as_str());
    println!();
    println!("Or open the URI:");
    println!("{}", link.as_str());
    println!();
    println!(
        "The QR code is saved in {} (mode 0600, owned by {user}). Keep it somewhere safe: \
         scanning it again restores the codes on a new phone.",
        qr_path.display()
    );

    // 4. Ask for a code; none leaves the record pending.
    match prompt::read_code("Code from the app (empty to activate later): ")
        .map_err(|e| CliError::Output("the prompt".into(), e))?
    {
        Some(typed) => super::activate::activate_with(&ctx, &user, &typed),
        None => {
            println!();
            println!(
                "The enrollment is pending. Once the app shows codes, activate it with: \
                 totpctl activate {user}"
            );
            Ok(())
        }
    }
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What to warn about for parameters that common apps ignore.
pub fn app_warnings(params: OtpParams) -> Vec<String> {
    let mut unusual = Vec::new();
    if params.algorithm != Algorithm::SHA1 {
        unusual.push(format!("the {} algorithm", params.algorithm));
    }
    if params.digits != 6 {
        unusual.push(format!("{} digits", params.digits));
    }
    if params.period != 30 {
        unusual.push(format!("a {} s period", params.period));
    }
    if unusual.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "some authenticator apps, Google Authenticator among them, ignore {} and then show \
         codes that do not work. Activation proves that the app gets them right.",
        unusual.join(", ")
    )]
}
