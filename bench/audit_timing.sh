#!/usr/bin/env bash
# Lists every line under tests/ (conftest.py and helpers included) that could make a test depend on
# the machine's speed, load, core count or scheduling order, by kind, for a person to read: a hit
# is a place to look, not a finding. Issue 27's audit went through each hit in its test (findings and
# what each became: the commit that added this script).
#
#     bench/audit_timing.sh            # hits by kind, then the count per kind and per file
#     bench/audit_timing.sh tests/x    # another folder
#
# Kinds:
#   clock      reads a clock (a duration that may end in an assertion)
#   sleep      waits a fixed time (must it be long enough?)
#   deadline   a timeout, deadline, or a wait/join with one (is it generous, is it a condition wait?)
#   speed      rates, latencies, "faster"/"slower", elapsed or wall time
#   schedule   cores, workers, threads, concurrency, health checks (does an assertion follow who ran first?)
#   property   hypothesis (its default deadline of 200 ms per example is a timing assertion)
set -euo pipefail
cd "$(dirname "$0")/.."
folder=${1:-tests}

declare -A pattern=(
    [clock]='time\.(time|perf_counter|monotonic|process_time)\(|getrusage|datetime\.(now|utcnow)\('
    [sleep]='sleep\('
    [deadline]='timeout|deadline|\.wait\(|(thread|worker|controller|process)s?\.join\(|\.join\([0-9t]|Barrier\('
    [speed]='per_s\b|_per_s[a-z_]*|images_per|speed|faster|slower|throughput|latency|elapsed|\bwall\b|\bratio'
    [schedule]='cpu_count|sched_getaffinity|default_workers|num_cpus|concurren|max_concurrent|Thread\(|health_check|--workers'
    [property]='@given|@settings|hypothesis'
)
kinds=(clock sleep deadline speed schedule property)

for kind in "${kinds[@]}"; do
    grep -rnE --include='*.py' "${pattern[$kind]}" "$folder" | sed "s/^/$kind  /" || true
done
echo
echo "hits per kind:"
for kind in "${kinds[@]}"; do
    printf '  %-9s %s\n' "$kind" "$(grep -rnE --include='*.py' "${pattern[$kind]}" "$folder" | wc -l)"
done
echo "files with hits:"
grep -rlE --include='*.py' "$(IFS='|'; for k in "${kinds[@]}"; do printf '%s|' "${pattern[$k]}"; done | sed 's/|$//')" \
    "$folder" | sort | sed 's/^/  /'
