*** Settings ***
Documentation       1-06 docker run: output, exit codes, terminals, stdin, names, hostnames, --rm, signals and the
...                 container's processes (after VIC's 1-06-Docker-Run).
Library             Collections
Library             String
Library             ../libraries/VicRef.py
Test Timeout        2 minutes


*** Test Cases ***
Foreground Run Prints The Output Of Its Command
    [Teardown]    Run Docker    rm    -f    r06-echo
    ${rc}    ${out}=    Run Docker    run    --name    r06-echo    ${BUSYBOX}    sh    -c    echo first; echo RUN-DONE
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    first\nRUN-DONE

Run With A Tty Writes Terminal Line Endings
    [Teardown]    Run Docker    rm    -f    r06-tty
    ${rc}    ${out}    ${err}=    Run Docker Separately    run    -t    --name    r06-tty    ${BUSYBOX}    sh    -c
    ...    echo RUN-DONE; tty
    Should Be Equal As Integers    ${rc}    0
    Should Match Regexp    ${out}    ^RUN-DONE\\r\\n/dev/pts/\\d+\\r\\n$
    Should Be Empty    ${err}

Run Returns The Exit Code Of Its Command
    ${rc}    ${out}=    Run Docker    run    --rm    ${BUSYBOX}    true
    Should Be Equal As Integers    ${rc}    0
    ${rc}    ${out}=    Run Docker    run    --rm    ${BUSYBOX}    false
    Should Be Equal As Integers    ${rc}    1
    ${rc}    ${out}=    Run Docker    run    --rm    ${BUSYBOX}    sh    -c    exit 3
    Should Be Equal As Integers    ${rc}    3

Run Of A Missing Executable Fails With 127
    [Teardown]    Run Docker    rm    -f    r06-nocmd
    ${rc}    ${out}    ${err}=    Run Docker Separately    run    --name    r06-nocmd    ${BUSYBOX}    nosuchcmd
    Should Be Equal As Integers    ${rc}    127
    Should Contain    ${err}    docker: Error response from daemon:
    Should Contain    ${err}    exec: "nosuchcmd": executable file not found in $PATH
    ${code}=    Docker Should Succeed    inspect    -f    {{.State.ExitCode}}    r06-nocmd
    Should Be Equal    ${code}    127

Run Of An Invalid Image Reference Is Refused
    ${rc}    ${out}=    Run Docker    run    fakeImage    /bin/bash
    Should Be Equal As Integers    ${rc}    125
    Should Contain    ${out}    invalid reference format

Run Without A Command Uses The Image Default
    [Documentation]    The image's default command is `sh`; with no stdin it ends at once, silently.
    [Teardown]    Run Docker    rm    -f    r06-default
    ${rc}    ${out}=    Run Docker    run    --name    r06-default    ${BUSYBOX}
    Should Be Equal As Integers    ${rc}    0
    Should Be Empty    ${out}
    ${cmd}=    Docker Should Succeed    inspect    -f    {{json .Config.Cmd}}    r06-default
    Should Be Equal    ${cmd}    ["sh"]

Detached Run Keeps Its Process Running
    [Teardown]    Run Docker    rm    -f    r06-top
    ${id}=    Docker Should Succeed    run    -d    --name    r06-top    ${BUSYBOX}    top    -d    600
    Should Match Regexp    ${id}    ^[0-9a-f]{64}$
    ${ps}=    Docker Should Succeed    ps    --filter    name=r06-top    --format    {{.ID}} {{.Status}}
    Should Match Regexp    ${ps}    ^${id[:12]} Up
    Wait Until Keyword Succeeds    20x    250ms    Logs Should Contain Top Screen    r06-top

Run Records When The Container Started And Finished
    [Teardown]    Run Docker    rm    -f    r06-times
    ${before}=    Evaluate    time.time()    modules=time
    Docker Should Succeed    run    --name    r06-times    ${BUSYBOX}    sleep    1
    ${after}=    Evaluate    time.time()    modules=time
    ${started}=    Docker Should Succeed    inspect    -f    {{.State.StartedAt}}    r06-times
    ${finished}=    Docker Should Succeed    inspect    -f    {{.State.FinishedAt}}    r06-times
    ${started}=    Seconds Since The Epoch    ${started}
    ${finished}=    Seconds Since The Epoch    ${finished}
    Should Be True    ${before} - 1 <= ${started} < ${finished} <= ${after} + 1
    Should Be True    ${finished} - ${started} >= 0.9

Names And IDs Are Not Confused
    [Documentation]    A container may be named after the short ID of another one; the name wins in look-ups.
    [Setup]    Forget Containers To Remove
    [Teardown]    Remove The Containers To Remove
    ${first}=    Docker Should Succeed    run    -itd    ${BUSYBOX}
    Remove At The End    ${first}
    ${short}=    Set Variable    ${first[:12]}
    ${rc}    ${second}=    Run Docker    run    -itd    --name    ${short}    ${BUSYBOX}
    Remove At The End    ${short}
    Should Be Equal As Integers    ${rc}    0
    Should Not Contain    ${second}    Conflict
    Should Not Be Equal    ${second}    ${first}
    ${found}=    Docker Should Succeed    inspect    -f    {{.Id}}    ${short}
    Should Be Equal    ${found}    ${second}
    ${name}=    Docker Should Succeed    inspect    -f    {{.Name}}    ${first}
    Should Not Be Equal    ${name}    /${short}

Run With Rm Leaves No Container Behind
    ${before}=    Docker Should Succeed    ps    -aq
    ${rc}    ${out}=    Run Docker    run    --rm    --name    r06-gone    ${BUSYBOX}    echo    bye
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    bye
    ${after}=    Docker Should Succeed    ps    -aq
    Should Be Equal    ${after}    ${before}
    ${rc}    ${out}=    Run Docker    inspect    r06-gone
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    No such object: r06-gone

Run Sets The Hostname And Hosts File
    [Teardown]    Run Docker    rm    -f    r06-host
    ${rc}    ${out}=    Run Docker    run    --name    r06-host    ${BUSYBOX}
    ...    sh    -c    cat /etc/hostname /etc/hosts
    Should Be Equal As Integers    ${rc}    0
    ${id}=    Docker Should Succeed    inspect    -f    {{.Id}}    r06-host
    ${hostname}=    Get Line    ${out}    0
    Should Be Equal    ${hostname}    ${id[:12]}
    Should Contain    ${out}    127.0.0.1\tlocalhost

Run With A Hostname And Domain Name
    ${rc}    ${out}=    Run Docker    run    --rm    --hostname    vic.test    ${BUSYBOX}    hostname
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    vic.test
    ${rc}    ${out}=    Run Docker    run    --rm    --hostname    vic.test    ${BUSYBOX}    hostname    -d
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    test
    ${rc}    ${out}=    Run Docker    run    --rm    --hostname    vic.test    ${BUSYBOX}    cat    /etc/hosts
    Should Be Equal As Integers    ${rc}    0
    Should Match Regexp    ${out}    (?m)^\\S+\\s+vic\\.test\\b

Run With Piped Stdin
    ${rc}    ${out}=    Run Docker    run    -i    --rm    ${BUSYBOX}    cat    stdin=hi\n
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    hi
    ${rc}    ${out}=    Run Docker    run    -i    --rm    ${BUSYBOX}    sort    stdin=pear\napple\n
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    apple\npear

Run Attaches Only The Streams Asked For
    ${rc}    ${out}    ${err}=    Run Docker Separately    run    -a    stdout    --rm    ${BUSYBOX}    sh    -c
    ...    echo to-out; echo to-err >&2
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    to-out\n
    Should Be Empty    ${err}
    ${rc}    ${out}    ${err}=    Run Docker Separately    run    -a    stderr    --rm    ${BUSYBOX}    sh    -c
    ...    echo to-out; echo to-err >&2
    Should Be Equal As Integers    ${rc}    0
    Should Be Empty    ${out}
    Should Be Equal    ${err}    to-err\n

Interactive Run On A Terminal
    [Teardown]    Run Docker    rm    -f    r06-it
    ${term}=    Start Terminal    run    -it    --name    r06-it    ${BUSYBOX}    sh    rows=30    cols=90
    Terminal Should Show    ${term}    / #
    Type Line    ${term}    stty size
    Terminal Should Show    ${term}    30 90
    Resize Terminal    ${term}    50    132
    Type Line    ${term}    stty size
    Terminal Should Show    ${term}    50 132
    Type Line    ${term}    echo answer-$((40 + 2))
    Terminal Should Show    ${term}    answer-42
    Type Line    ${term}    exit 5
    Terminal Should Exit With    ${term}    5
    ${code}=    Docker Should Succeed    inspect    -f    {{.State.ExitCode}}    r06-it
    Should Be Equal    ${code}    5

Created Container Starts Attached
    [Teardown]    Run Docker    rm    -f    r06-created
    Docker Should Succeed    create    --name    r06-created    ${BUSYBOX}    sh    -c    echo from-start; exit 6
    ${rc}    ${out}=    Run Docker    start    -a    r06-created
    Should Be Equal As Integers    ${rc}    6
    Should Be Equal    ${out}    from-start

Docker Top Lists The Container Processes
    [Teardown]    Run Docker    rm    -f    r06-ps
    ${id}=    Docker Should Succeed    run    -d    --name    r06-ps    ${BUSYBOX}    sleep    603
    ${out}=    Docker Should Succeed    top    r06-ps
    ${titles}=    Get Line    ${out}    0
    Should Match Regexp    ${titles}    ^UID\\s+PID\\s+PPID\\s+C\\s+STIME\\s+TTY\\s+TIME\\s+CMD$
    Should Contain    ${out}    sleep 603
    Docker Should Succeed    kill    r06-ps
    Docker Should Succeed    wait    r06-ps
    ${rc}    ${out}=    Run Docker    top    r06-ps
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    container ${id} is not running

A Signal Reaches The Container Process
    [Teardown]    Run Docker    rm    -f    r06-signal
    Docker Should Succeed    run    -d    --name    r06-signal    ${BUSYBOX}    sh    -c
    ...    trap "echo got USR1" USR1; echo trap-set; while true; do sleep 0.1; done
    Wait Until Keyword Succeeds    40x    250ms    Logs Should Contain    r06-signal    trap-set
    Docker Should Succeed    kill    -s    USR1    r06-signal
    Wait Until Keyword Succeeds    40x    250ms    Logs Should Contain    r06-signal    got USR1
    ${running}=    Docker Should Succeed    inspect    -f    {{.State.Running}}    r06-signal
    Should Be Equal    ${running}    true

Stop Ends A Process With Its Exit Code
    [Documentation]    `sleep` dies of SIGTERM (143); a process that ignores it is killed after the grace period (137).
    [Teardown]    Run Docker    rm    -f    r06-sleeper    r06-stubborn
    Docker Should Succeed    run    -d    --name    r06-sleeper    ${BUSYBOX}    sleep    600
    Docker Should Succeed    run    -d    --name    r06-stubborn    ${BUSYBOX}    sh    -c
    ...    trap "" TERM; echo ignoring; while true; do sleep 0.1; done
    Wait Until Keyword Succeeds    40x    250ms    Logs Should Contain    r06-stubborn    ignoring
    ${began}=    Evaluate    time.monotonic()    modules=time
    Docker Should Succeed    stop    r06-sleeper
    ${took}=    Evaluate    time.monotonic() - ${began}    modules=time
    Should Be True    ${took} < 5
    ${code}=    Docker Should Succeed    inspect    -f    {{.State.ExitCode}}    r06-sleeper
    Should Be Equal    ${code}    143
    ${began}=    Evaluate    time.monotonic()    modules=time
    Docker Should Succeed    stop    -t    2    r06-stubborn
    ${took}=    Evaluate    time.monotonic() - ${began}    modules=time
    Should Be True    ${took} >= 1.9
    ${code}=    Docker Should Succeed    inspect    -f    {{.State.ExitCode}}    r06-stubborn
    Should Be Equal    ${code}    137

Wait Returns The Exit Code And Restart Runs Again
    [Teardown]    Run Docker    rm    -f    r06-wait    r06-again
    Docker Should Succeed    run    -d    --name    r06-wait    ${BUSYBOX}    sh    -c    sleep 0.5; exit 7
    ${code}=    Docker Should Succeed    wait    r06-wait
    Should Be Equal    ${code}    7
    Docker Should Succeed    run    -d    --name    r06-again    ${BUSYBOX}    sh    -c    echo started; sleep 600
    Wait Until Keyword Succeeds    40x    250ms    Logs Should Contain    r06-again    started
    Docker Should Succeed    restart    -t    1    r06-again
    Wait Until Keyword Succeeds    40x    250ms    Logs Should Be    r06-again    started\nstarted
    ${running}=    Docker Should Succeed    inspect    -f    {{.State.Running}}    r06-again
    Should Be Equal    ${running}    true

Orphaned Processes Are Reaped
    [Documentation]    Fifty short-lived background processes lose their parent; the container's init reaps them.
    [Tags]    embedded-only
    [Teardown]    Run Docker    rm    -f    r06-orphans
    Docker Should Succeed    run    -d    --name    r06-orphans    ${BUSYBOX}    sh    -c
    ...    i=0; while [ $i -lt 50 ]; do sh -c "sleep 0.05 &"; i=$((i+1)); done; echo spawned; exec sleep 601
    Wait Until Keyword Succeeds    40x    250ms    Logs Should Contain    r06-orphans    spawned
    Sleep    1s
    Container Should Have No Zombies    sleep 601

Remove Force Ends A Running Container
    [Teardown]    Run Docker    rm    -f    r06-removed
    Docker Should Succeed    run    -d    --name    r06-removed    ${BUSYBOX}    sleep    600
    ${rc}    ${out}=    Run Docker    rm    r06-removed
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    cannot remove container "/r06-removed": container is running
    ${out}=    Docker Should Succeed    rm    -f    r06-removed
    Should Be Equal    ${out}    r06-removed
    ${left}=    Docker Should Succeed    ps    -aq    --filter    name=r06-removed
    Should Be Empty    ${left}


*** Keywords ***
Logs Should Contain
    [Arguments]    ${name}    ${text}
    ${out}=    Docker Should Succeed    logs    ${name}
    Should Contain    ${out}    ${text}

Logs Should Be
    [Arguments]    ${name}    ${text}
    ${out}=    Docker Should Succeed    logs    ${name}
    Should Be Equal    ${out}    ${text}

Logs Should Contain Top Screen
    [Arguments]    ${name}
    ${out}=    Docker Should Succeed    logs    ${name}
    Should Contain    ${out}    Mem:
    Should Contain    ${out}    CPU:
    Should Contain    ${out}    Load average:

Seconds Since The Epoch
    [Documentation]    An RFC 3339 time from docker inspect as seconds since 1970 (microsecond precision).
    [Arguments]    ${stamp}
    ${seconds}=    Evaluate    datetime.datetime.fromisoformat($stamp).timestamp()    modules=datetime
    RETURN    ${seconds}

Forget Containers To Remove
    VAR    @{TO_REMOVE}    @{EMPTY}    scope=TEST

Remove At The End
    [Arguments]    ${container}
    Append To List    ${TO_REMOVE}    ${container}

Remove The Containers To Remove
    IF    ${TO_REMOVE}    Run Docker    rm    -f    @{TO_REMOVE}
