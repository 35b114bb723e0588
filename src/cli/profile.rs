//! The store and what needs no relay: `keygen`, `id`, `contact …` and `group list`.

use std::path::{Path, PathBuf};

use sealwire::client::{Profile, identity_to_hex, parse_identity};
use sealwire::store::{KdfParams, LocalStore, StoreKey};
use sealwire::{Error, Result};
use zeroize::Zeroizing;

use super::args::{ContactCommand, Global, KeygenArgs};
use super::output::{self, Names, clean};

/// The database file in a store directory (the store's documented on-disk format).
const STORE_FILE: &str = "store.redb";
/// The environment variable holding a raw store key (64 hex digits).
const STORE_KEY_VAR: &str = "SEALWIRE_STORE_KEY";
/// The environment variable holding a passphrase.
const PASSPHRASE_VAR: &str = "SEALWIRE_PASSPHRASE";

/// The store directory: `--home`, `SEALWIRE_HOME` or `$HOME/.sealwire`.
pub(crate) fn home_dir(global: &Global) -> Result<PathBuf> {
    if let Some(home) = &global.home {
        return Ok(home.clone());
    }
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => Ok(PathBuf::from(home).join(".sealwire")),
        _ => Err(Error::InvalidInput {
            what: "home directory",
            reason: "HOME is not set; pass --home DIR or set SEALWIRE_HOME".into(),
        }),
    }
}

/// Where the store key came from, for the `keygen` hint.
enum KeySource {
    File(PathBuf),
    Env,
    Passphrase,
}

/// The store key, first found: the key file, `SEALWIRE_STORE_KEY`, `SEALWIRE_PASSPHRASE`, a
/// passphrase typed on the terminal (twice with `confirm`).
fn store_key(global: &Global, dir: &Path, confirm: bool) -> Result<(StoreKey, KeySource)> {
    if let Some(path) = &global.key_file {
        return Ok((StoreKey::from_file(path)?, KeySource::File(path.clone())));
    }
    if std::env::var_os(STORE_KEY_VAR).is_some() {
        return Ok((StoreKey::from_env(STORE_KEY_VAR)?, KeySource::Env));
    }
    if let Some(value) = std::env::var_os(PASSPHRASE_VAR) {
        let passphrase = value.into_string().map_err(|_| {
            Error::StoreKey(format!(
                "the environment variable {PASSPHRASE_VAR} is not UTF-8"
            ))
        })?;
        return Ok((StoreKey::passphrase(passphrase), KeySource::Passphrase));
    }
    let prompt = format!("passphrase for {}: ", dir.display());
    let passphrase = ask(&prompt)?;
    if passphrase.is_empty() {
        return Err(Error::StoreKey("the passphrase is empty".into()));
    }
    if confirm && ask("the same passphrase again: ")? != passphrase {
        return Err(Error::StoreKey(
            "the two passphrases differ; nothing was created".into(),
        ));
    }
    Ok((
        StoreKey::passphrase(passphrase.to_string()),
        KeySource::Passphrase,
    ))
}

/// Reads a passphrase from the terminal without echo.
fn ask(prompt: &str) -> Result<Zeroizing<String>> {
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| {
            Error::StoreKey(format!(
                "no store key given and none could be asked on the terminal ({e}); pass \
                 --key-file, or set {STORE_KEY_VAR} or {PASSPHRASE_VAR}"
            ))
        })
}

/// Opens the profile in the store at `--home` (asking for the key only if there is a store).
pub(crate) fn open(global: &Global) -> Result<Profile> {
    let dir = home_dir(global)?;
    if !dir.join(STORE_FILE).exists() {
        return Err(Error::NoStore(format!(
            "{} (pass --home DIR if it is elsewhere)",
            dir.display()
        )));
    }
    let (key, _) = store_key(global, &dir, false)?;
    Profile::open(LocalStore::open(&dir, &key)?)
}

/// `sealwire keygen`.
pub(crate) fn keygen(global: &Global, args: &KeygenArgs) -> Result<()> {
    let dir = home_dir(global)?;
    if dir.join(STORE_FILE).exists() {
        return Err(Error::StoreExists(dir.display().to_string()));
    }
    let (key, source) = match &args.new_key_file {
        Some(path) => (
            StoreKey::generate_file(path)?,
            KeySource::File(path.clone()),
        ),
        None => store_key(global, &dir, true)?,
    };
    let created = LocalStore::create(&dir, &key, KdfParams::default()).and_then(Profile::create);
    let profile = match created {
        Ok(profile) => profile,
        Err(error) => {
            if let Some(path) = &args.new_key_file {
                let _ = std::fs::remove_file(path);
            }
            return Err(error);
        }
    };
    print_id(&profile)?;
    let protected = match source {
        KeySource::File(path) => format!(
            "the key file {} (keep it safe, and pass it with --key-file or SEALWIRE_KEY_FILE)",
            path.display()
        ),
        KeySource::Env => format!("the key in {STORE_KEY_VAR}"),
        KeySource::Passphrase => "your passphrase".to_owned(),
    };
    output::line(&format!(
        "\nYour store is {}, encrypted with {protected}.\n\
         Give the identity line to your contacts: each of them runs\n\
         \x20   sealwire contact add YOUR_NAME <identity>\n\
         and you add theirs. Then compare safety numbers in person\n\
         (`sealwire contact safety NAME`) and mark them verified (`sealwire contact verify NAME`).",
        dir.display()
    ))
}

/// `sealwire id`.
pub(crate) fn print_id(profile: &Profile) -> Result<()> {
    output::line(&format!(
        "identity: {}\nmailbox: {}",
        identity_to_hex(profile.identity()),
        profile.mailbox().to_hex()
    ))
}

/// `sealwire contact …`.
pub(crate) fn contact(global: &Global, command: &ContactCommand) -> Result<()> {
    let mut profile = open(global)?;
    match command {
        ContactCommand::Add {
            name,
            identity,
            replace,
        } => {
            let identity = parse_identity(identity)?;
            let contact = if *replace {
                let previous = profile.contact(name).ok();
                let contact = profile.replace_contact(name, &identity)?;
                if let Some(previous) = previous.filter(|p| p.identity != identity) {
                    output::warn(&format!(
                        "warning: replaced the identity of {name}: old safety number {}; it is \
                         no longer marked verified",
                        previous.safety_number()
                    ));
                }
                contact
            } else {
                match profile.add_contact(name, &identity) {
                    Ok(contact) => contact,
                    Err(Error::IdentityChanged { name, stored, new }) => {
                        output::warn(&output::identity_changed_warning(&name, &stored, &new));
                        return Err(Error::IdentityChanged { name, stored, new });
                    }
                    Err(error) => return Err(error),
                }
            };
            output::line(&format!(
                "contact {} added.\n\n{}",
                clean(&contact.name),
                output::safety_text(&contact)
            ))
        }
        ContactCommand::List => {
            let contacts = profile.contacts()?;
            if contacts.is_empty() {
                output::warn("no contacts yet: add one with `sealwire contact add NAME IDENTITY`");
            }
            let width = contacts
                .iter()
                .map(|c| c.name.chars().count())
                .max()
                .unwrap_or(0);
            for c in &contacts {
                let status = if c.verified { "verified" } else { "unverified" };
                output::line(&format!(
                    "{:<width$}  {status:<10}  {}",
                    clean(&c.name),
                    c.safety_number()
                ))?;
            }
            Ok(())
        }
        ContactCommand::Verify { name, undo } => {
            let contact = profile.set_verified(name, !undo)?;
            output::line(&if contact.verified {
                format!("{} is now marked verified.", clean(name))
            } else {
                format!("{} is no longer marked verified.", clean(name))
            })
        }
        ContactCommand::Remove { name } => {
            profile.remove_contact(name)?;
            output::line(&format!("contact {} removed.", clean(name)))
        }
        ContactCommand::Safety { name } => {
            let contact = profile.contact(name)?;
            output::line(&output::safety_text(&contact))
        }
    }
}

/// `sealwire group list`.
pub(crate) fn group_list(global: &Global) -> Result<()> {
    let profile = open(global)?;
    let groups = profile.groups();
    let names = Names::new(&profile.contacts()?, &groups);
    if groups.is_empty() {
        output::warn("no groups yet: create one with `sealwire group create LABEL MEMBER...`");
    }
    for group in &groups {
        let members: Vec<String> = group
            .members
            .iter()
            .map(|(identity, role)| {
                let who = if identity == profile.identity() {
                    "you".to_owned()
                } else {
                    names.person(identity)
                };
                match role {
                    sealwire::core::MemberRole::Admin => format!("{who} (admin)"),
                    _ => who,
                }
            })
            .collect();
        let status = if group.is_member {
            ""
        } else {
            "  [you were removed]"
        };
        output::line(&format!(
            "{}\t{}\tepoch {}\t{}{status}",
            clean(&group.label),
            group.id,
            group.epoch,
            members.join(", ")
        ))?;
    }
    Ok(())
}
