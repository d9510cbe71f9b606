*** Settings ***
Documentation       1-08 docker logs: every line, --tail, --follow, --timestamps, --since, the two streams, a missing
...                 container, and logs kept across a restart of the VCH (after VIC's 1-08-Docker-Logs).
Library             String
Library             ../libraries/VicRef.py
Test Timeout        2 minutes


*** Test Cases ***
Logs Hold Every Line Of A Finished Container
    [Teardown]    Run Docker    rm    -f    l08-count
    Docker Should Succeed    run    -d    --name    l08-count    ${BUSYBOX}    sh    -c    seq 1 128 | xargs -n1 echo
    ${code}=    Docker Should Succeed    wait    l08-count
    Should Be Equal    ${code}    0
    ${rc}    ${out}=    Run Docker    logs    l08-count
    Should Be Equal As Integers    ${rc}    0
    Lines Should Be Numbers    ${out}    1    128

Logs With Tail
    [Teardown]    Run Docker    rm    -f    l08-tail
    Docker Should Succeed    create    --name    l08-tail    ${BUSYBOX}    seq    1    5000
    Docker Should Succeed    start    l08-tail
    Docker Should Succeed    wait    l08-tail
    ${out}=    Docker Should Succeed    logs    --tail\=all    l08-tail
    Lines Should Be Numbers    ${out}    1    5000
    ${out}=    Docker Should Succeed    logs    --tail\=200    l08-tail
    Lines Should Be Numbers    ${out}    4801    5000
    ${out}=    Docker Should Succeed    logs    --tail    1    l08-tail
    Should Be Equal    ${out}    5000
    ${out}=    Docker Should Succeed    logs    --tail\=0    l08-tail
    Should Be Empty    ${out}

Follow Ends When The Container Stops
    [Teardown]    Run Docker    rm    -f    l08-follow
    Docker Should Succeed    create    --name    l08-follow    ${BUSYBOX}    sh    -c
    ...    for i in 1 2 3 4 5; do sleep 0.2; echo line $i; done
    Docker Should Succeed    start    l08-follow
    ${rc}    ${followed}=    Run Docker    logs    --follow    l08-follow    timeout=30
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${followed}    line 1\nline 2\nline 3\nline 4\nline 5
    # the container has stopped: following it again returns at once, with the same lines
    ${rc}    ${again}=    Run Docker    logs    -f    l08-follow    timeout=10
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${again}    ${followed}

Follow With Tail Starts Near The End And Keeps Reading
    [Teardown]    Run Docker    rm    -f    l08-hup
    Docker Should Succeed    run    -d    --name    l08-hup    ${BUSYBOX}    sh    -c
    ...    trap "seq 11 20; exit" HUP; seq 1 10; while true; do sleep 0.1; done
    Wait Until Keyword Succeeds    40x    250ms    Logs Should Have Lines    l08-hup    10
    Docker Should Succeed    kill    -s    HUP    l08-hup
    ${rc}    ${out}=    Run Docker    logs    --tail    5    --follow    l08-hup    timeout=30
    Should Be Equal As Integers    ${rc}    0
    # the last five lines when the tail was taken (6 to 10 if the trap had not written yet), then the rest up to 20
    ${first}=    Get Line    ${out}    0
    Should Be True    6 <= ${first} <= 16
    Lines Should Be Numbers    ${out}    ${first}    20

Follow Reads Everything Written Before The Stop
    [Documentation]    Two lines longer than 64 bytes half a second apart, the container ending right after the second.
    [Teardown]    Run Docker    rm    -f    l08-long
    ${line}=    Evaluate    "=" * 65
    Docker Should Succeed    create    --name    l08-long    ${BUSYBOX}    sh    -c
    ...    echo ${line}; sleep .5; echo ${line}
    Docker Should Succeed    start    l08-long
    ${rc}    ${out}=    Run Docker    logs    --follow    l08-long    timeout=30
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    ${line}\n${line}

Logs With Timestamps
    [Teardown]    Run Docker    rm    -f    l08-stamps
    Docker Should Succeed    run    --name    l08-stamps    ${BUSYBOX}    sh    -c    echo one; echo two
    ${out}=    Docker Should Succeed    logs    --timestamps    l08-stamps
    @{lines}=    Split To Lines    ${out}
    Length Should Be    ${lines}    2
    Should Be A Timestamped Line    ${lines}[0]    one
    Should Be A Timestamped Line    ${lines}[1]    two
    Should Be True    $lines[0] <= $lines[1]

Logs Since A Time
    [Teardown]    Run Docker    rm    -f    l08-since
    Docker Should Succeed    run    --name    l08-since    ${BUSYBOX}    sh    -c    echo early; sleep 1; echo late
    ${out}=    Docker Should Succeed    logs    --since    1h    l08-since
    Should Be Equal    ${out}    early\nlate
    ${out}=    Docker Should Succeed    logs    -t    l08-since
    ${stamp}=    Fetch From Left    ${out}    ${SPACE}
    # half a second after the first line: a time between the two lines, as Unix seconds
    ${between}=    Evaluate
    ...    "%.3f" % (datetime.datetime.fromisoformat($stamp).timestamp() + 0.5)    modules=datetime
    ${out}=    Docker Should Succeed    logs    --since    ${between}    l08-since
    Should Be Equal    ${out}    late
    ${out}=    Docker Should Succeed    logs    --until    ${between}    l08-since
    Should Be Equal    ${out}    early

Logs Keep Stdout And Stderr Apart
    [Documentation]    The writes are a little apart in time, so their order in the log is known.
    [Teardown]    Run Docker    rm    -f    l08-streams
    Docker Should Succeed    run    --name    l08-streams    ${BUSYBOX}    sh    -c
    ...    echo out-1; sleep 0.2; echo err-1 >&2; sleep 0.2; echo out-2
    ${rc}    ${out}    ${err}=    Run Docker Separately    logs    l08-streams
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    out-1\nout-2\n
    Should Be Equal    ${err}    err-1\n
    # the tail counts lines of both streams, in the order they were written
    ${rc}    ${out}    ${err}=    Run Docker Separately    logs    --tail    2    l08-streams
    Should Be Equal    ${out}    out-2\n
    Should Be Equal    ${err}    err-1\n
    ${rc}    ${out}    ${err}=    Run Docker Separately    logs    --tail    1    l08-streams
    Should Be Equal    ${out}    out-2\n
    Should Be Empty    ${err}

Logs Are The Bytes The Container Wrote
    [Documentation]    A binary, a text listing and a last line without a newline come back from the log unchanged.
    [Teardown]    Run Docker    rm    -f    l08-binary    l08-text    l08-partial
    ${rc}    ${written}    ${err}=    Run Docker Separately    run    --name    l08-binary    ${BUSYBOX}
    ...    head    -c    20000    /bin/busybox
    Should Be Equal As Integers    ${rc}    0
    ${rc}    ${logged}    ${err}=    Run Docker Separately    logs    l08-binary
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${logged}    ${written}    values=False
    ${rc}    ${written}    ${err}=    Run Docker Separately    run    --name    l08-text    ${BUSYBOX}
    ...    ls    -la    /bin
    Should Be Equal As Integers    ${rc}    0
    ${rc}    ${logged}    ${err}=    Run Docker Separately    logs    l08-text
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${logged}    ${written}
    Docker Should Succeed    run    --name    l08-partial    ${BUSYBOX}    printf    no newline at the end
    ${rc}    ${logged}    ${err}=    Run Docker Separately    logs    l08-partial
    Should Be Equal    ${logged}    no newline at the end

Logs Of A Running Container
    [Teardown]    Run Docker    rm    -f    l08-running
    Docker Should Succeed    run    -d    --name    l08-running    ${BUSYBOX}    sh    -c    echo so far; sleep 600
    Wait Until Keyword Succeeds    40x    250ms    Logs Should Have Lines    l08-running    1
    ${out}=    Docker Should Succeed    logs    l08-running
    Should Be Equal    ${out}    so far

Logs Of A Missing Container
    ${rc}    ${out}=    Run Docker    logs    l08-missing
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    No such container: l08-missing

Logs Survive A Restart Of The VCH
    [Documentation]    The logs live on the datastore: the restarted VCH still serves them, times included.
    [Tags]    embedded-only
    [Teardown]    Run Docker    rm    -f    l08-kept    l08-still
    Docker Should Succeed    run    --name    l08-kept    ${BUSYBOX}    sh    -c    echo kept 1; echo kept 2 >&2
    Docker Should Succeed    run    -d    --name    l08-still    ${BUSYBOX}    sh    -c    echo still here; sleep 600
    Wait Until Keyword Succeeds    40x    250ms    Logs Should Have Lines    l08-still    1
    ${stamped}=    Docker Should Succeed    logs    -t    l08-kept
    Restart VCH
    ${rc}    ${out}    ${err}=    Run Docker Separately    logs    l08-kept
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    kept 1\n
    Should Be Equal    ${err}    kept 2\n
    ${again}=    Docker Should Succeed    logs    -t    l08-kept
    Should Be Equal    ${again}    ${stamped}
    ${out}=    Docker Should Succeed    logs    l08-still
    Should Be Equal    ${out}    still here


*** Keywords ***
Lines Should Be Numbers
    [Documentation]    `text` is the lines `first` to `last`, each line its own number.
    [Arguments]    ${text}    ${first}    ${last}
    ${expected}=    Evaluate    "\\n".join(str(n) for n in range(int($first), int($last) + 1))
    Should Be Equal    ${text}    ${expected}    values=False

Logs Should Have Lines
    [Arguments]    ${name}    ${count}
    ${out}=    Docker Should Succeed    logs    ${name}
    ${lines}=    Get Line Count    ${out}
    Should Be Equal As Integers    ${lines}    ${count}
