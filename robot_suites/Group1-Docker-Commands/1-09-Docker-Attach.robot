*** Settings ***
Documentation       1-09 docker attach and start -a / -ai: input and output through the attach stream, terminals,
...                 refusals (after VIC's 1-09-Docker-Attach).
Library             ../libraries/VicRef.py
Test Timeout        2 minutes


*** Test Cases ***
Attach Passes Input To A Running Container
    [Documentation]    `q` on the attached stdin ends `top`; the attach ends with it.
    [Teardown]    Run Docker    rm    -f    a09-top
    Docker Should Succeed    create    -i    --name    a09-top    ${BUSYBOX}    top    -d    600
    Docker Should Succeed    start    a09-top
    ${rc}    ${out}=    Run Docker    attach    a09-top    stdin=q    timeout=60
    Should Be Equal As Integers    ${rc}    0
    ${state}=    Docker Should Succeed    inspect    -f    {{.State.Status}} {{.State.ExitCode}}    a09-top
    Should Be Equal    ${state}    exited 0

Attach To A Container That Is Not Running Is Refused
    [Teardown]    Run Docker    rm    -f    a09-created
    Docker Should Succeed    create    -it    --name    a09-created    ${BUSYBOX}    top
    ${rc}    ${out}=    Run Docker    attach    a09-created
    Should Be Equal As Integers    ${rc}    1
    Should Be Equal    ${out}    You cannot attach to a stopped container, start it first

Attach To A Missing Container Is Refused
    ${rc}    ${out}=    Run Docker    attach    a09-missing
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    No such container: a09-missing

Start Attached With Short Input, Again And Again
    [Teardown]    Run Docker    rm    -f    a09-sort
    Docker Should Succeed    create    -i    --name    a09-sort    ${BUSYBOX}    sort
    FOR    ${round}    IN RANGE    5
        ${rc}    ${out}    ${err}=    Run Docker Separately    start    -ai    a09-sort    stdin=one\n    timeout=60
        Should Be Equal As Integers    ${rc}    0
        Should Be Equal    ${out}    one\n
        Should Be Empty    ${err}
    END

Start Attached With Short Output
    [Teardown]    Run Docker    rm    -f    a09-echo
    Docker Should Succeed    create    --name    a09-echo    ${BUSYBOX}    echo    one
    ${rc}    ${out}    ${err}=    Run Docker Separately    start    -a    a09-echo    timeout=60
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    one\n
    Should Be Empty    ${err}

Start Attached With Short Output On A Tty
    [Teardown]    Run Docker    rm    -f    a09-echo-tty
    Docker Should Succeed    create    -t    --name    a09-echo-tty    ${BUSYBOX}    echo    one
    ${rc}    ${out}    ${err}=    Run Docker Separately    start    -a    a09-echo-tty    timeout=60
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    one\r\n
    Should Be Empty    ${err}

Restarted Containers Show Their Short Output Every Time
    [Documentation]    Every `start -a` of a short command shows its output, the second start on included (a
    ...    RunBlock cleared late by the previous attach once let the process run unattached).
    [Teardown]    Run Docker    rm    -f    a09-again    a09-again-tty
    Docker Should Succeed    create    --name    a09-again    ${BUSYBOX}    echo    one
    Docker Should Succeed    create    -t    --name    a09-again-tty    ${BUSYBOX}    echo    one
    FOR    ${round}    IN RANGE    4
        FOR    ${name}    ${expected}    IN    a09-again    one\n    a09-again-tty    one\r\n
            ${rc}    ${out}    ${err}=    Run Docker Separately    start    -a    ${name}    timeout=60
            Should Be Equal As Integers    ${rc}    0
            Should Be Empty    ${err}
            Should Be Equal    ${out}    ${expected}    round ${round} of ${name}
        END
    END

Attach Shows Only What Comes After It
    [Documentation]    The container writes `before`, then `tick` until it is told to end; an attach sees the ticks
    ...    and the end, never `before`.
    [Teardown]    Run Docker    rm    -f    a09-later
    Docker Should Succeed    run    -d    --name    a09-later    ${BUSYBOX}    sh    -c
    ...    echo before; while [ ! -e /tmp/go ]; do echo tick; sleep 0.2; done; echo after
    Wait Until Keyword Succeeds    40x    250ms    Logs Should Contain    a09-later    tick
    ${term}=    Start Terminal    attach    a09-later
    ${seen}=    Terminal Should Show    ${term}    tick
    Docker Should Succeed    exec    a09-later    touch    /tmp/go
    ${rest}=    Terminal Should Show    ${term}    after
    Should Not Contain    ${seen}${rest}    before
    Terminal Should Exit With    ${term}    0

Attach To A Shell On A Terminal
    [Teardown]    Run Docker    rm    -f    a09-shell
    Docker Should Succeed    run    -dit    --name    a09-shell    ${BUSYBOX}
    ${term}=    Start Terminal    attach    a09-shell    rows=33    cols=99
    Type Line    ${term}    stty size
    Terminal Should Show    ${term}    33 99
    Resize Terminal    ${term}    40    120
    Type Line    ${term}    stty size
    Terminal Should Show    ${term}    40 120
    Type Line    ${term}    echo ok-$((1 + 1))
    Terminal Should Show    ${term}    ok-2
    Type Line    ${term}    exit 4
    Terminal Should Exit With    ${term}    4
    ${code}=    Docker Should Succeed    inspect    -f    {{.State.ExitCode}}    a09-shell
    Should Be Equal    ${code}    4

Two Terminals Attached To One Container
    [Documentation]    Both see the output; the input of either reaches the shell; both end with it.
    [Teardown]    Run Docker    rm    -f    a09-shared
    Docker Should Succeed    run    -dit    --name    a09-shared    ${BUSYBOX}
    ${one}=    Start Terminal    attach    a09-shared
    Type Line    ${one}    echo one-ready-$((0 + 1))
    Terminal Should Show    ${one}    one-ready-1
    ${two}=    Start Terminal    attach    a09-shared
    Type Line    ${two}    echo two-ready-$((0 + 2))
    Terminal Should Show    ${two}    two-ready-2
    Terminal Should Show    ${one}    two-ready-2
    Type Line    ${one}    echo first-$((2 * 3))
    Terminal Should Show    ${one}    first-6
    Terminal Should Show    ${two}    first-6
    Type Line    ${two}    echo second-$((3 * 3))
    Terminal Should Show    ${one}    second-9
    Terminal Should Show    ${two}    second-9
    Type Line    ${one}    exit 3
    Terminal Should Exit With    ${one}    3
    Terminal Should Exit With    ${two}    3

Start Attached And Interactive On A Terminal
    [Teardown]    Run Docker    rm    -f    a09-start-it
    Docker Should Succeed    create    -it    --name    a09-start-it    ${BUSYBOX}    sh
    ${term}=    Start Terminal    start    -ai    a09-start-it
    Type Line    ${term}    echo started-$((5 * 5))
    Terminal Should Show    ${term}    started-25
    Type Line    ${term}    exit 2
    Terminal Should Exit With    ${term}    2


*** Keywords ***
Logs Should Contain
    [Arguments]    ${name}    ${text}
    ${out}=    Docker Should Succeed    logs    ${name}
    Should Contain    ${out}    ${text}
