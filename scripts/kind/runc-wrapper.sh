#!/bin/bash
# A runtime for dockerd (scripts/kind/docker.sh registers it): drops the capabilities this
# machine's bounding set lacks (CAP_SYS_RESOURCE on these machines) from the OCI spec
# (`create`/`run --bundle DIR`) or the process spec (`exec --process FILE`), then runs runc.
# Docker's --privileged, which kind uses for every node, asks for every capability the kernel
# knows, and runc then fails: "unable to apply caps: operation not permitted". Where the
# bounding set is full this changes nothing.
RUNC=${PP_REAL_RUNC:-/usr/sbin/runc}
bnd=$((16#$(awk '/^CapBnd/{print $2}' /proc/self/status)))
last=$(cat /proc/sys/kernel/cap_last_cap)
names=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE)
missing=()
for ((i = 0; i <= last && i < ${#names[@]}; i++)); do
  (( (bnd >> i) & 1 )) || missing+=("\"CAP_${names[i]}\"")
done
if ((${#missing[@]})); then
  drop="[$(IFS=,; echo "${missing[*]}")]"
  file=""; prev=""
  for a in "$@"; do
    case $prev in --bundle|-b) file="$a/config.json" ;; --process|-p) file="$a" ;; esac
    case $a in --bundle=*) file="${a#--bundle=}/config.json" ;; --process=*) file="${a#--process=}" ;; esac
    prev=$a
  done
  if [[ -n $file && -f $file ]]; then
    tmp="$file.pp.$$"
    if jq --argjson drop "$drop" '
        def strip: if type == "object" then with_entries(.value |= (if type == "array" then map(select(. as $c | $drop | index($c) | not)) else . end)) else . end;
        if has("process") then .process.capabilities |= strip else .capabilities |= strip end' "$file" >"$tmp"; then
      mv "$tmp" "$file"
    else
      rm -f "$tmp"
    fi
  fi
fi
exec "$RUNC" "$@"
