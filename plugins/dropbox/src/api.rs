//! Dropbox HTTP API v2 shapes: the request arguments and responses this connector uses, as
//! serde types, and the header-safe JSON that `Dropbox-API-Arg` needs.
//!
//! Only the fields the connector reads are declared; unknown fields are ignored, so additions
//! on Dropbox's side never break a sync. Unions use Dropbox's `.tag` convention.

use serde::Deserialize;
use serde_json::Value;

/// `files/list_folder` and `/continue`.
#[derive(Debug, Deserialize)]
pub struct ListFolderResult {
    pub entries: Vec<Metadata>,
    pub cursor: String,
    pub has_more: bool,
}

/// A `Metadata` union member.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum Metadata {
    File(FileMetadata),
    Folder(FolderMetadata),
    Deleted(DeletedMetadata),
}

#[derive(Clone, Debug, Deserialize)]
pub struct FileMetadata {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub path_lower: Option<String>,
    #[serde(default)]
    pub path_display: Option<String>,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub server_modified: Option<String>,
    #[serde(default)]
    pub client_modified: Option<String>,
    #[serde(default)]
    pub rev: Option<String>,
    #[serde(default = "yes")]
    pub is_downloadable: bool,
    #[serde(default)]
    pub export_info: Option<ExportInfo>,
}

fn yes() -> bool {
    true
}

/// How a non-downloadable file (Paper, Google Docs…) can be exported.
#[derive(Clone, Debug, Deserialize)]
pub struct ExportInfo {
    #[serde(default)]
    pub export_as: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct FolderMetadata {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub path_lower: Option<String>,
    #[serde(default)]
    pub path_display: Option<String>,
    /// Deprecated by Dropbox in favour of `sharing_info.shared_folder_id`; read both.
    #[serde(default)]
    pub shared_folder_id: Option<String>,
    #[serde(default)]
    pub parent_shared_folder_id: Option<String>,
    #[serde(default)]
    pub sharing_info: Option<SharingInfo>,
}

/// `FolderSharingInfo`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SharingInfo {
    #[serde(default)]
    pub shared_folder_id: Option<String>,
    #[serde(default)]
    pub parent_shared_folder_id: Option<String>,
}

impl FolderMetadata {
    /// The shared folder this folder is, or else the one it is in: whose members can see it.
    pub fn governing_shared_folder(&self) -> Option<&str> {
        let info = self.sharing_info.as_ref();
        self.shared_folder_id
            .as_deref()
            .or_else(|| info?.shared_folder_id.as_deref())
            .or(self.parent_shared_folder_id.as_deref())
            .or_else(|| info?.parent_shared_folder_id.as_deref())
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct DeletedMetadata {
    #[serde(default)]
    pub path_lower: Option<String>,
}

/// `users/get_current_account` (the parts the connector needs).
#[derive(Clone, Debug, Deserialize)]
pub struct FullAccount {
    pub account_id: String,
    #[serde(default)]
    pub email: String,
    pub root_info: RootInfo,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RootInfo {
    pub root_namespace_id: String,
}

/// `team/token/get_authenticated_admin`.
#[derive(Debug, Deserialize)]
pub struct AuthenticatedAdmin {
    pub admin_profile: AdminProfile,
}

#[derive(Debug, Deserialize)]
pub struct AdminProfile {
    pub team_member_id: String,
}

/// `sharing/list_received_files` and `/continue`: the cursor is present while more remain.
#[derive(Debug, Deserialize)]
pub struct ReceivedFiles {
    pub entries: Vec<SharedFile>,
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SharedFile {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub preview_url: Option<String>,
}

/// `sharing/get_shared_link_metadata` for a file link.
#[derive(Clone, Debug, Deserialize)]
pub struct SharedLinkMetadata {
    pub url: String,
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub server_modified: Option<String>,
    #[serde(default)]
    pub rev: Option<String>,
}

/// `SharedFileMembers` / `SharedFolderMembers`: users, groups and invitees of a file or folder.
#[derive(Debug, Default, Deserialize)]
pub struct Members {
    #[serde(default)]
    pub users: Vec<UserMembership>,
    #[serde(default)]
    pub groups: Vec<GroupMembership>,
    #[serde(default)]
    pub invitees: Vec<InviteeMembership>,
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct UserMembership {
    pub user: UserInfo,
}

#[derive(Debug, Deserialize)]
pub struct UserInfo {
    pub account_id: String,
}

#[derive(Debug, Deserialize)]
pub struct GroupMembership {
    pub group: GroupInfo,
}

#[derive(Debug, Deserialize)]
pub struct GroupInfo {
    pub group_id: String,
}

#[derive(Debug, Deserialize)]
pub struct InviteeMembership {
    pub invitee: Invitee,
}

/// `InviteeInfo`: an e-mail address, or another kind Dropbox may add.
#[derive(Debug, Deserialize)]
pub struct Invitee {
    #[serde(rename = ".tag")]
    pub tag: String,
    #[serde(default)]
    pub email: Option<String>,
}

impl Members {
    /// `user_id:…`, `group:…` and `email:…` identities, Elastic's prefixes.
    pub fn identities(&self) -> impl Iterator<Item = String> + '_ {
        let users = self
            .users
            .iter()
            .map(|u| format!("user_id:{}", u.user.account_id));
        let groups = self
            .groups
            .iter()
            .map(|g| format!("group:{}", g.group.group_id));
        let invitees = self
            .invitees
            .iter()
            .filter(|i| i.invitee.tag == "email")
            .filter_map(|i| i.invitee.email.as_ref().map(|e| format!("email:{e}")));
        users.chain(groups).chain(invitees)
    }

    /// How many members this page lists.
    pub fn len(&self) -> usize {
        self.users.len() + self.groups.len() + self.invitees.len()
    }
}

/// One file's answer in `sharing/list_file_members/batch`.
#[derive(Debug, Deserialize)]
pub struct BatchMembers {
    pub file: String,
    pub result: BatchResult,
}

#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum BatchResult {
    Result {
        members: Members,
        #[serde(default)]
        member_count: Option<u64>,
    },
    AccessError {
        #[serde(default)]
        access_error: Value,
    },
    #[serde(other)]
    Other,
}

/// `files/search_v2` and `files/search/continue_v2`.
#[derive(Debug, Deserialize)]
pub struct SearchResult {
    pub matches: Vec<SearchMatch>,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SearchMatch {
    pub metadata: MetadataV2,
}

/// `MetadataV2`: `{".tag": "metadata", "metadata": Metadata}` (open union).
#[derive(Debug, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum MetadataV2 {
    Metadata {
        metadata: Metadata,
    },
    #[serde(other)]
    Other,
}

/// `team/members/list_v2` and `/list/continue_v2`.
#[derive(Debug, Deserialize)]
pub struct MembersList {
    pub members: Vec<TeamMember>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub has_more: bool,
}

#[derive(Debug, Deserialize)]
pub struct TeamMember {
    pub profile: MemberProfile,
}

#[derive(Debug, Deserialize)]
pub struct MemberProfile {
    pub account_id: String,
    pub email: String,
    pub name: Name,
    #[serde(default)]
    pub status: Option<Tagged>,
    #[serde(default)]
    pub joined_on: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct Name {
    pub display_name: String,
}

#[derive(Debug, Deserialize)]
pub struct Tagged {
    #[serde(rename = ".tag")]
    pub tag: String,
}

/// The body of an HTTP 409 (endpoint error) or 401/422 answer; `error_summary` names the
/// union path, e.g. `path/not_found/..`.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error_summary: String,
}

/// JSON for an HTTP header: Dropbox requires every character at or above U+007F in
/// `Dropbox-API-Arg` to be escaped as `\uXXXX` (surrogate pairs beyond the BMP). Building the
/// argument by string formatting, as Elastic does, breaks on quotes and backslashes in names.
pub fn header_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if (c as u32) < 0x7F {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn header_json_escapes_everything_non_ascii() {
        let arg = json!({"path": "/Données/\"Quoted\" plan 😀.md\u{7f}"});
        let header = header_json(&arg);
        assert!(header.is_ascii(), "{header}");
        assert_eq!(
            header,
            r#"{"path":"/Donn\u00e9es/\"Quoted\" plan \ud83d\ude00.md\u007f"}"#
        );
        let back: Value = serde_json::from_str(&header).unwrap();
        assert_eq!(back, arg);
    }

    #[test]
    fn metadata_unions_parse() {
        let entries: Vec<Metadata> = serde_json::from_value(json!([
            {".tag": "folder", "id": "id:a", "name": "A", "path_lower": "/a",
             "sharing_info": {"shared_folder_id": "42", "read_only": false}},
            {".tag": "file", "id": "id:b", "name": "b.paper", "size": 3, "rev": "015",
             "server_modified": "2024-01-01T00:00:00Z", "client_modified": "2023-12-31T00:00:00Z",
             "is_downloadable": false, "export_info": {"export_as": "markdown"}},
            {".tag": "deleted", "name": "c", "path_lower": "/c"}
        ]))
        .unwrap();
        match &entries[0] {
            Metadata::Folder(f) => assert_eq!(f.governing_shared_folder(), Some("42")),
            other => panic!("{other:?}"),
        }
        match &entries[1] {
            Metadata::File(f) => assert!(!f.is_downloadable && f.export_info.is_some()),
            other => panic!("{other:?}"),
        }
        assert!(matches!(entries[2], Metadata::Deleted(_)));
    }
}
