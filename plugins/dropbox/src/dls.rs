//! Document-level security: who may see each file and folder, and one access-control document
//! per team member for the ACL index.
//!
//! Identities are Elastic's strings: `user_id:<account_id>`, `email:<address>` (invitees),
//! `group:<group_id>`, and in access-control documents also `user:<display name>`.
//!
//! - Folders: the members of the shared folder (or team folder) the folder is or sits in
//!   (`sharing/list_folder_members` + `/continue`), fetched once per shared folder per sync
//!   (Elastic asks again for every folder); a folder outside any shared folder belongs to the
//!   syncing account.
//! - Files, `include_inherited_users_and_groups` off (Elastic's default and fast path):
//!   `sharing/list_file_members/batch`, 50 files per call, several calls side by side, which
//!   lists the file's own members only; a file with more members than the batch shows is asked
//!   again with `list_file_members` + `/continue` (Elastic silently keeps the first 20).
//! - Files, inherited on: `sharing/list_file_members` per file with `include_inherited`, side by
//!   side, plus `/continue`.
//! - As in Elastic, with inherited off the syncing account is added to every list (it can see
//!   what it syncs). Files shared with the user always include the user.
//! - **Fails closed.** A member list that cannot be read (a refused call, an access error in a
//!   batch answer, an answer that leaves a file out) yields *no* list for that entry: the sync
//!   withholds its document (see `sync`), never indexes it without `_allow_access_control` or
//!   with an empty list — both mean "everyone" to the search-time filter. A file shared with
//!   the user is the exception: it keeps the user's own identity, which is certain.
//!
//! Lists are sorted and de-duplicated, so a document's version only changes when its access
//! does.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};
use tributary_sdk::docs::Document;
use tributary_sdk::{Error, Result, page};

use crate::api::{BatchMembers, BatchResult, FileMetadata, FolderMetadata, Members, MembersList};
use crate::client::Session;
use crate::docs::hash_hex;

/// Files per `sharing/list_file_members/batch` call (Elastic's `REQUEST_BATCH_SIZE`).
const BATCH_FILES: usize = 50;
/// Members per file in a batch answer (Elastic's `BATCH_RESPONSE_COUNT`; Dropbox allows 20).
const BATCH_MEMBERS: u64 = 20;
/// Members per page of the single-item listings (Elastic's `LIMIT`).
const PAGE_MEMBERS: u64 = 300;

/// Access lists for one sync.
pub struct Access {
    account: String,
    inherited: bool,
    /// Members per shared folder; `None` when they could not be read.
    folders: HashMap<String, Option<Vec<String>>>,
}

impl Access {
    pub fn new(account_id: &str, inherited: bool) -> Self {
        Self {
            account: format!("user_id:{account_id}"),
            inherited,
            folders: HashMap::new(),
        }
    }

    fn finish(&self, identities: impl IntoIterator<Item = String>, add_self: bool) -> Vec<String> {
        let mut set: BTreeSet<String> = identities.into_iter().collect();
        if add_self {
            set.insert(self.account.clone());
        }
        set.into_iter().collect()
    }

    /// Access lists for the files and folders of one page, by id. An entry whose members could
    /// not be read has no list: its document must be withheld.
    pub fn for_entries(
        &mut self,
        session: &mut Session,
        files: &[&FileMetadata],
        folders: &[&FolderMetadata],
    ) -> Result<HashMap<String, Vec<String>>> {
        let mut out = HashMap::new();
        let wanted: BTreeSet<&str> = folders
            .iter()
            .filter_map(|f| f.governing_shared_folder())
            .filter(|id| !self.folders.contains_key(*id))
            .collect();
        self.load_folders(session, wanted.into_iter().collect())?;
        for folder in folders {
            let acl = match folder.governing_shared_folder() {
                Some(sf) => match self.folders.get(sf).cloned().flatten() {
                    Some(members) => self.finish(members, !self.inherited),
                    None => continue,
                },
                None => vec![self.account.clone()],
            };
            out.insert(folder.id.clone(), acl);
        }
        let ids: Vec<&str> = files.iter().map(|f| f.id.as_str()).collect();
        let members = if self.inherited {
            self.file_members(session, &ids, true)?
        } else {
            self.file_members_batched(session, &ids)?
        };
        for (id, identities) in members {
            if let Some(identities) = identities {
                let acl = self.finish(identities, !self.inherited);
                out.insert(id, acl);
            }
        }
        Ok(out)
    }

    /// The access list of a file shared with the user (by its id). The user is on it even when
    /// the members cannot be read: the file was shared with them, so that list is never wider
    /// than the truth.
    pub fn for_shared_file(&mut self, session: &mut Session, id: &str) -> Result<Vec<String>> {
        let members = self.file_members(session, &[id], self.inherited)?;
        let identities = members.into_iter().flat_map(|(_, m)| m.unwrap_or_default());
        Ok(self.finish(identities, true))
    }

    fn load_folders(&mut self, session: &mut Session, ids: Vec<&str>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let bodies: Vec<Value> = ids
            .iter()
            .map(|id| json!({"shared_folder_id": id, "limit": PAGE_MEMBERS}))
            .collect();
        let answers = session.rpc_all::<Members>("sharing/list_folder_members", &bodies)?;
        for (id, answer) in ids.into_iter().zip(answers) {
            let identities = match answer {
                Ok(first) => Some(drain(
                    session,
                    "sharing/list_folder_members/continue",
                    first,
                )?),
                Err(conflict) => {
                    tributary_sdk::warn!(
                        "members of shared folder {id} not readable ({}); its folders are \
                         withheld from the index",
                        conflict.summary
                    );
                    None
                }
            };
            self.folders.insert(id.to_string(), identities);
        }
        Ok(())
    }

    /// `list_file_members` for each file, side by side (+ `/continue`); `None` for a file whose
    /// members could not be read.
    fn file_members(
        &self,
        session: &mut Session,
        ids: &[&str],
        inherited: bool,
    ) -> Result<Vec<(String, Option<Vec<String>>)>> {
        let bodies: Vec<Value> = ids
            .iter()
            .map(|id| json!({"file": id, "include_inherited": inherited, "limit": PAGE_MEMBERS}))
            .collect();
        let answers = session.rpc_all::<Members>("sharing/list_file_members", &bodies)?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, answer) in ids.iter().zip(answers) {
            let identities = match answer {
                Ok(first) => Some(drain(session, "sharing/list_file_members/continue", first)?),
                Err(conflict) => {
                    tributary_sdk::debug!("members of {id} not readable: {}", conflict.summary);
                    None
                }
            };
            out.push((id.to_string(), identities));
        }
        Ok(out)
    }

    /// `list_file_members/batch`, 50 files per call, calls side by side; `None` for a file
    /// whose members could not be read.
    fn file_members_batched(
        &self,
        session: &mut Session,
        ids: &[&str],
    ) -> Result<Vec<(String, Option<Vec<String>>)>> {
        let bodies: Vec<Value> = ids
            .chunks(BATCH_FILES)
            .map(|chunk| json!({"files": chunk, "limit": BATCH_MEMBERS}))
            .collect();
        let answers =
            session.rpc_all::<Vec<BatchMembers>>("sharing/list_file_members/batch", &bodies)?;
        let mut out = Vec::with_capacity(ids.len());
        let mut incomplete = Vec::new();
        for answer in answers {
            let results = answer.map_err(|c| c.into_error())?;
            for item in results {
                match item.result {
                    BatchResult::Result {
                        members,
                        member_count,
                    } => {
                        if member_count.is_some_and(|n| n > members.len() as u64) {
                            incomplete.push(item.file);
                        } else {
                            out.push((item.file, Some(members.identities().collect())));
                        }
                    }
                    BatchResult::AccessError { access_error } => {
                        tributary_sdk::debug!(
                            "members of {} not readable: {access_error}",
                            item.file
                        );
                        out.push((item.file, None));
                    }
                    BatchResult::Other => out.push((item.file, None)),
                }
            }
        }
        let incomplete: Vec<&str> = incomplete.iter().map(String::as_str).collect();
        out.extend(self.file_members(session, &incomplete, false)?);
        Ok(out)
    }
}

/// Follows a member listing's cursor to the end.
fn drain(session: &mut Session, continue_route: &str, first: Members) -> Result<Vec<String>> {
    let mut identities: Vec<String> = first.identities().collect();
    let mut cursor = first.cursor;
    while let Some(c) = cursor.filter(|c| !c.is_empty()) {
        let page: Members = session.call(continue_route, &json!({ "cursor": c }))?;
        identities.extend(page.identities());
        cursor = page.cursor;
    }
    Ok(identities)
}

/// Elastic's query template (`connectors/access_control.py`): a member sees documents without
/// an access list, or whose list shares an identity with the member's. It queries the
/// `keyword` sub-field that Elastic's dynamic mapping (and tributary's sink mapping) gives
/// `_allow_access_control`.
const QUERY_SOURCE: &str = r#"{
                    "bool": {
                        "should": [
                            {
                                "bool": {
                                    "must_not": {
                                        "exists": {
                                            "field": "_allow_access_control"
                                        }
                                    }
                                }
                            },
                            {
                                "terms": {
                                    "_allow_access_control.keyword": {{#toJson}}access_control{{/toJson}}
                                }
                            }
                        ]
                    }
                }"#;

/// Writes one access-control document per team member (`team/members/list_v2` + continue).
pub fn access_control_documents(
    session: &mut Session,
    page_size: u64,
    mut emit: impl FnMut(Document) -> Result<()>,
) -> Result<u64> {
    let first = session.rpc::<MembersList, _>(
        "team/members/list_v2",
        &json!({"limit": page_size.clamp(1, 1000)}),
    )?;
    let mut first = Some(first.map_err(|c| c.into_error())?);
    let mut count = 0;
    for member in page::cursor(|cursor: Option<&String>| {
        let list: MembersList = match (cursor, first.take()) {
            (None, Some(list)) => list,
            (Some(cursor), _) => session.call(
                "team/members/list/continue_v2",
                &json!({ "cursor": cursor }),
            )?,
            (None, None) => {
                return Err(Error::Protocol(
                    "team/members/list_v2 paged without a cursor".into(),
                ));
            }
        };
        let next = if list.has_more { list.cursor } else { None };
        Ok(page::Page::new(list.members, next))
    }) {
        emit(member_document(&member?))?;
        count += 1;
    }
    Ok(count)
}

fn member_document(member: &crate::api::TeamMember) -> Document {
    let p = &member.profile;
    let email = format!("email:{}", p.email);
    let username = format!("user:{}", p.name.display_name);
    let user_id = format!("user_id:{}", p.account_id);
    let mut access: BTreeSet<String> = [email.clone(), username.clone(), user_id.clone()].into();
    access.extend(p.groups.iter().map(|g| format!("group:{g}")));
    let access: Vec<String> = access.into_iter().collect();
    let document = Document::bare(p.email.clone())
        .field(
            "identity",
            json!({"email": email, "username": username, "user_id": user_id}),
        )
        .field("status", json!(p.status.as_ref().map(|s| s.tag.clone())))
        .field("created_at", json!(p.joined_on))
        .field(
            "query",
            json!({"template": {"params": {"access_control": access}, "source": QUERY_SOURCE}}),
        );
    let version = hash_hex(document.fields_json().as_bytes());
    document.version(version)
}

/// A team-linked token is needed for team member listings.
pub fn require_team(session: &Session) -> Result<()> {
    if session.is_team() {
        Ok(())
    } else {
        Err(Error::Config(
            "`use_document_level_security`: access-control syncs list the team's members, which \
             needs a refresh token of a team-linked app (scopes team_info.read, members.read, \
             team_data.member)"
                .into(),
        ))
    }
}
