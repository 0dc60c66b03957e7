#!/usr/bin/env bash
# Print what the lab runs and how to reach it.
set -euo pipefail
name=${1:-smartmx-lab}
echo
echo "The lab is up:"
docker ps --filter "label=smartmx.lab=$name" \
    --format 'table {{.Names}}\t{{.Status}}\t{{.Networks}}'
cat <<TXT

Try:
  docker exec -it $name-mx1 bash                 # a shell on the primary MX
  docker exec $name-mx2 dig +short MX gnu.test   # the lab DNS, seen from mx2
  . .venv/bin/activate
  ansible mx_primary:mx_secondary -m ansible.builtin.ping
  ansible-playbook site.yml                      # apply the collection again
  make lab-down                                  # remove the lab
TXT
