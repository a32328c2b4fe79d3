// Without pkg-config's flags (they would link libpq), the header is looked for where the
// packages put it: Debian and Ubuntu under postgresql/, Fedora at the top, Homebrew in its keg.
#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#elif __has_include(<postgresql/libpq-fe.h>)
#include <postgresql/libpq-fe.h>
#elif __has_include("/opt/homebrew/opt/libpq/include/libpq-fe.h")
#include "/opt/homebrew/opt/libpq/include/libpq-fe.h"
#elif __has_include("/usr/local/opt/libpq/include/libpq-fe.h")
#include "/usr/local/opt/libpq/include/libpq-fe.h"
#else
#error "libpq-fe.h not found: install libpq's development files (Debian: apt install libpq-dev)"
#endif

/// The libpq functions the host calls, as pointers filled from dlopen at the first PostgreSQL
/// use (`LibPQ.swift`): a host on SQLite never loads libpq and the twenty libraries it pulls in
/// (TLS, Kerberos, LDAP), which cost every command about 5 ms at start. Their types come from
/// the declarations above, so the compiler still checks every call against libpq's own header.
typedef struct {
    __typeof__(PQclear) *PQclear;
    __typeof__(PQcmdTuples) *PQcmdTuples;
    __typeof__(PQconnectdbParams) *PQconnectdbParams;
    __typeof__(PQconsumeInput) *PQconsumeInput;
    __typeof__(PQenterPipelineMode) *PQenterPipelineMode;
    __typeof__(PQerrorMessage) *PQerrorMessage;
    __typeof__(PQexec) *PQexec;
    __typeof__(PQexecPrepared) *PQexecPrepared;
    __typeof__(PQexitPipelineMode) *PQexitPipelineMode;
    __typeof__(PQfinish) *PQfinish;
    __typeof__(PQfreemem) *PQfreemem;
    __typeof__(PQgetResult) *PQgetResult;
    __typeof__(PQgetisnull) *PQgetisnull;
    __typeof__(PQgetvalue) *PQgetvalue;
    __typeof__(PQnotifies) *PQnotifies;
    __typeof__(PQntuples) *PQntuples;
    __typeof__(PQpipelineSync) *PQpipelineSync;
    __typeof__(PQprepare) *PQprepare;
    __typeof__(PQreset) *PQreset;
    __typeof__(PQresultErrorField) *PQresultErrorField;
    __typeof__(PQresultErrorMessage) *PQresultErrorMessage;
    __typeof__(PQresultStatus) *PQresultStatus;
    __typeof__(PQsendPrepare) *PQsendPrepare;
    __typeof__(PQsendQueryPrepared) *PQsendQueryPrepared;
    __typeof__(PQsocket) *PQsocket;
    __typeof__(PQstatus) *PQstatus;
} ch_libpq_functions;
