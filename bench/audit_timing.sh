#!/usr/bin/env bash
# Lists every line under tests/ (conftest.py and helpers included) that could make a test depend on
# the machine's speed, load, core count or scheduling order, by kind, for a person to read: a hit
# is a place to look, not a finding. Issue 27's audit (274 hits in 31 files) went through each hit in
# its test and found 11 places that depended on the machine's speed or on other Ray instances on the
# host; what each became:
#   1. epoch_parts' speed ratio ShuffleNet > 2x ResNet-18 -> the model class and parameter count each
#      step ran (bench/epoch_parts.py records them beside the rates)
#   2. synthhead preparation under 60 CPU-s -> bench/prepare_time.py
#   3. test_outbox's 5-s and 15-s limits -> bounds that tell the behaviours apart on any machine
#   4. node loss: the trial could finish before the kill -> frozen (SIGSTOP) once an epoch is seen;
#      5 missed health checks, not 3, before a node is dead
#   5. cluster fixtures' `ray stop --force` ended every Ray on the host -> they kill their own processes
#   6. ray_local joined whatever Ray the host named -> address="local", started again where needed
#   7-10. "fewer than 3 trials finished" after Ctrl-C or a killed driver (interrupted search, resume
#      across the split, bucket resume, driver loss) -> conftest.training_frozen: every other trial
#      frozen before the interrupt
#   11. fixed Ray ports and the shared /tmp/ray -> free ports and a temp folder per test cluster
# Kept as they are: the MLflow outage's "an epoch inside the outage" (training goes on for 1 s after
# the server stops), epoch_parts' combined < min(loader, step) (arithmetic), hypothesis with
# deadline=None, and polling deadlines of 60-600 s that only end a hung test.
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
