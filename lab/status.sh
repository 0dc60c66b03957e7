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

A failover by hand (outside sends through DNS: MX 10 mx1, then MX 20 mx2):
  m() { printf 'Subject: %s\n\n%s\n' "\$1" "\$1" | docker exec -i $name-outside sendmail -f you@offsite.test "\${@:2}"; }
  m before rms@gnu.test                                   # a forward, through the primary
  docker exec $name-outside grep -rl before /var/mail/offsite/Maildir/new
  docker stop $name-mx1                                   # the primary is down
  m during rms@gnu.test zarkon@gnu.test                   # a forward and a mailbox
  docker exec $name-outside grep -rl during /var/mail/offsite/Maildir/new   # the forward came through mx2
  docker exec $name-mx2 exim4 -bp                         # zarkon's copy waits on mx2
  m nobody nosuch@gnu.test; docker exec $name-outside tail -3 /var/log/exim4/mainlog   # 550 from mx2
  docker start $name-mx1; sleep 15                        # the primary is back: it says ETRN
  docker exec $name-mx2 exim4 -bp                         # the queue is empty
  docker exec $name-mx1 grep -rl during /home/zarkon/Maildir/new
TXT
