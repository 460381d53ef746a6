#!/usr/bin/env bash
# unknown_command_check.sh TANDEM: `tandem foo` names the unknown word, lists the commands and
# exits non-zero, one level down too; a known command still parses.
set -euo pipefail
tandem=$1
if "$tandem" foo >/dev/null 2>"${TMPDIR:-/tmp}/unknown_command.$$"; then
  echo "tandem foo exited 0"; exit 1
fi
err=$(cat "${TMPDIR:-/tmp}/unknown_command.$$"); rm -f "${TMPDIR:-/tmp}/unknown_command.$$"
grep -q "unknown command 'foo'" <<<"$err" || { echo "$err"; exit 1; }
for c in chat serve logits plan bench; do
  grep -q "\b$c\b" <<<"$err" || { echo "command $c not listed: $err"; exit 1; }
done
# One level down: `tandem bench foo` lists bench's commands.
if "$tandem" bench foo >/dev/null 2>"${TMPDIR:-/tmp}/unknown_command.$$"; then
  echo "tandem bench foo exited 0"; exit 1
fi
err=$(cat "${TMPDIR:-/tmp}/unknown_command.$$"); rm -f "${TMPDIR:-/tmp}/unknown_command.$$"
grep -q "tandem bench: unknown command 'foo'" <<<"$err" || { echo "$err"; exit 1; }
grep -q "\brun\b" <<<"$err" || { echo "bench run not listed: $err"; exit 1; }
"$tandem" plan --help >/dev/null
echo ok
