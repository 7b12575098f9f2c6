//! The one place where errors become HTTP: status codes and Vault's `{"errors":[...]}` bodies
//! (API.md §0.1). Client errors keep their message; server errors are logged with the request id and
//! the client gets a generic message carrying that id, never the cause (which may name a path or key).

use hyper::StatusCode;
use tresor_logical::Error;

/// Vault's message for a body over `max_request_size`.
pub(crate) const TOO_LARGE: &str = "http: request body too large";

/// Why a request failed before or inside the core.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A logical error, mapped by [`status_of`].
    Logical(Error),
    /// The body exceeds `max_request_size` (413).
    TooLarge,
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Self::Logical(err)
    }
}

/// Vault's `multierror` rendering of a single error, used by its router and ACL paths.
pub(crate) fn multierror(msg: &str) -> String {
    format!("1 error occurred:\n\t* {msg}\n\n")
}

/// The status code of an error.
pub(crate) fn status_of(err: &Error) -> StatusCode {
    match err {
        Error::InvalidRequest(_) => StatusCode::BAD_REQUEST,
        Error::ClientStatus(s, _) => StatusCode::from_u16(*s).ok().filter(StatusCode::is_client_error).unwrap_or(StatusCode::BAD_REQUEST),
        Error::PermissionDenied | Error::Forbidden | Error::Denied(_) => StatusCode::FORBIDDEN,
        Error::NotFound | Error::Missing(_) | Error::NoRoute(_) | Error::UnsupportedPath => StatusCode::NOT_FOUND,
        Error::UnsupportedOperation => StatusCode::METHOD_NOT_ALLOWED,
        Error::Sealed => StatusCode::SERVICE_UNAVAILABLE,
        Error::Storage(_) | Error::Internal(_) | Error::Unavailable(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The `errors` list of an error body.
pub(crate) fn messages_of(err: &Error, request_id: &str) -> Vec<String> {
    match err {
        Error::InvalidRequest(msg) => vec![msg.clone()],
        Error::PermissionDenied => vec!["permission denied".into()],
        Error::Denied(msg) | Error::ClientStatus(_, msg) => vec![msg.clone()],
        Error::Forbidden => vec![multierror("permission denied")],
        Error::NotFound => vec![],
        Error::Missing(msg) => vec![multierror(msg)],
        Error::NoRoute(path) => vec![format!("no handler for route {path:?}. route entry not found.")],
        Error::UnsupportedPath => vec![multierror("unsupported path")],
        Error::UnsupportedOperation => vec![multierror("unsupported operation")],
        Error::Sealed => vec!["Vault is sealed".into()],
        Error::Unavailable(msg) => vec![multierror(msg)],
        Error::Storage(_) | Error::Internal(_) => {
            tracing::error!(request_id, error = %err, "request failed with an internal error");
            vec![multierror(&format!("internal error; see the server log for request id {request_id}"))]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_vault() {
        assert_eq!(status_of(&Error::invalid("x")), 400);
        assert_eq!(status_of(&Error::PermissionDenied), 403);
        assert_eq!(status_of(&Error::Forbidden), 403);
        assert_eq!(status_of(&Error::ClientStatus(404, "role \"r\" does not exist".into())), 404);
        assert_eq!(status_of(&Error::ClientStatus(500, "x".into())), 400, "never anything but a client error");
        assert_eq!(status_of(&Error::NotFound), 404);
        assert_eq!(status_of(&Error::NoRoute("a/b".into())), 404);
        assert_eq!(status_of(&Error::UnsupportedPath), 404);
        assert_eq!(status_of(&Error::UnsupportedOperation), 405);
        assert_eq!(status_of(&Error::Sealed), 503);
        assert_eq!(status_of(&Error::Internal("secret detail".into())), 500);
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let msgs = messages_of(&Error::Internal("key=hunter2".into()), "rid");
        assert!(!msgs.concat().contains("hunter2"));
        assert!(msgs.concat().contains("rid"));
    }

    #[test]
    fn bodies_match_vault() {
        assert_eq!(messages_of(&Error::NotFound, "r"), Vec::<String>::new());
        assert_eq!(
            messages_of(&Error::NoRoute("nosuchmount/foo".into()), "r"),
            vec!["no handler for route \"nosuchmount/foo\". route entry not found.".to_string()]
        );
        assert_eq!(messages_of(&Error::Forbidden, "r"), vec!["1 error occurred:\n\t* permission denied\n\n".to_string()]);
    }
}
