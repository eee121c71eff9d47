/* main.c: the `tessera` entry point: initialises crypto and dispatches to a
 * subcommand. Exit codes (SPEC section 5): 0 ok, 1 failure, 2 usage. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "crypto/crypto.h"

#ifndef TSR_VERSION
#error "TSR_VERSION must be defined by the build"
#endif

static const char usage_text[] =
    "usage: tessera <command> [options]\n"
    "\n"
    "commands:\n"
    "  keys generate   generate a signing key (private JWK or PKCS#8 PEM)\n"
    "  keys public     print the public JWK (or a JWKS) of a key\n"
    "  keys list       list the server's signing keys (kid, alg, state, dates)\n"
    "  keys rotate     rotate the server's signing keys\n"
    "  token sign      sign a JWT access token offline\n"
    "  token verify    verify a JWT and print its claims\n"
    "  token decode    print a JWT's header and claims WITHOUT verifying it\n"
    "  serve           run the HTTP server\n"
    "  user            manage accounts (add, list, show, disable, revoke, passwd)\n"
    "  version         print the version\n"
    "  help            print this help\n"
    "\n"
    "Run 'tessera <command> --help' for a command's options.\n"
    "Exit codes: 0 ok, 1 failure, 2 usage error.\n";

static int cmd_help(int argc, char **argv)
{
    fputs(usage_text, stdout);
    return TSR_CLI_OK;
}

static int cmd_version(int argc, char **argv)
{
    if (argc == 2 && tsr_cli_is_help(argv[1])) {
        fputs("usage: tessera version\n\nPrints the version of tessera.\n", stdout);
        return TSR_CLI_OK;
    }
    if (argc != 1) {
        fputs("usage: tessera version\n", stderr);
        return TSR_CLI_USAGE;
    }
    printf("tessera %s\n", TSR_VERSION);
    return fflush(stdout) == 0 ? TSR_CLI_OK : TSR_CLI_FAIL;
}

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"keys", tsr_cli_keys},
    {"serve", tsr_cli_serve},
    {"token", tsr_cli_token},
    {"user", tsr_cli_user},
    {"version", cmd_version},
    {"help", cmd_help},
};

int main(int argc, char **argv)
{
    int code = TSR_CLI_USAGE;

    if (argc < 2) {
        fputs(usage_text, stderr);
        goto out;
    }
    if (tsr_cli_is_help(argv[1])) {
        code = cmd_help(argc - 1, argv + 1);
        goto out;
    }
    if (strcmp(argv[1], "--version") == 0) {
        code = cmd_version(1, argv + 1);
        goto out;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        if (tsr_crypto_init() != TSR_OK) {
            tsr_cli_error("cannot initialise the crypto library");
            code = TSR_CLI_FAIL;
            goto out;
        }
        code = commands[i].run(argc - 1, argv + 1);
        tsr_crypto_thread_cleanup();
        goto out;
    }
    /* Not echoed: a misplaced argument may be a token. */
    tsr_cli_error("unknown command");
    fputs(usage_text, stderr);
out:
    return code;
}
