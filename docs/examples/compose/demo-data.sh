#!/bin/sh
# Demo Sage dossiers (SQLite files in the reference layout), then their activation.
set -e
for spec in "acme-fr 1" "acme-be 2" "globex 3"; do
  set -- $spec
  [ -f "/data/dossiers/$1.db" ] || dossiersync demo-dossier "/data/dossiers/$1.db" --clients 200 --seed "$2"
done
dossiersync --config /etc/dossiersync/implementations/acme.toml dossiers activate acme-fr acme-be
dossiersync --config /etc/dossiersync/implementations/globex.toml dossiers activate globex
