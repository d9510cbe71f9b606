*** Settings ***
Documentation       1-38 docker exec: detached, output with and without -i and -t, stdin, exit codes, options,
...                 terminals, several at once, refusals (after VIC's 1-38-Docker-Exec).
...
...                 One long-running container serves the suite; cases that end it make their own.
Library             Collections
Library             ../libraries/VicRef.py
Suite Setup         Docker Should Succeed    run    -d    --name    x38-host    ${BUSYBOX}    top    -d    600
Suite Teardown      Run Docker    rm    -f    x38-host
Test Timeout        2 minutes


*** Test Cases ***
Detached Exec Runs In The Background
    Docker Should Succeed    exec    -d    x38-host    sh    -c    sleep 0.3; touch /tmp/detached-done
    Wait Until Keyword Succeeds    40x    250ms
    ...    Docker Should Succeed    exec    x38-host    ls    /tmp/detached-done

Detached Exec Shows In Docker Top
    Docker Should Succeed    exec    -d    x38-host    sleep    77
    Wait Until Keyword Succeeds    40x    250ms    Top Should Show    x38-host    sleep 77

Exec Prints Its Output, Again And Again
    FOR    ${round}    IN RANGE    3
        ${rc}    ${out}    ${err}=    Run Docker Separately
        ...    exec    x38-host    echo    Round ${round}: the exec's output.
        Should Be Equal As Integers    ${rc}    0
        Should Be Equal    ${out}    Round ${round}: the exec's output.\n
        Should Be Empty    ${err}
    END

Interactive Exec Prints Its Output, Again And Again
    FOR    ${round}    IN RANGE    3
        ${rc}    ${out}=    Run Docker    exec    -i    x38-host    echo    interactive ${round}    stdin=${EMPTY}
        Should Be Equal As Integers    ${rc}    0
        Should Be Equal    ${out}    interactive ${round}
    END

Exec With A Tty Writes Terminal Line Endings
    FOR    ${round}    IN RANGE    3
        ${rc}    ${out}    ${err}=    Run Docker Separately    exec    -t    x38-host    echo    tty ${round}
        Should Be Equal As Integers    ${rc}    0
        Should Be Equal    ${out}    tty ${round}\r\n
    END

Exec Reads Stdin Only With -i
    ${rc}    ${out}=    Run Docker    exec    -i    x38-host    sort    stdin=pear\napple\n
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    apple\npear
    ${rc}    ${out}    ${err}=    Run Docker Separately    exec    x38-host    sort    stdin=pear\napple\n
    Should Be Equal As Integers    ${rc}    0
    Should Be Empty    ${out}
    Should Be Empty    ${err}

Exec Keeps Stdout And Stderr Apart
    ${rc}    ${out}    ${err}=    Run Docker Separately    exec    x38-host    sh    -c    echo to-out; echo to-err >&2
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    to-out\n
    Should Be Equal    ${err}    to-err\n

Exec Returns The Exit Code Of Its Command
    ${rc}    ${out}=    Run Docker    exec    x38-host    sh    -c    exit 9
    Should Be Equal As Integers    ${rc}    9
    ${rc}    ${out}=    Run Docker    exec    x38-host    false
    Should Be Equal As Integers    ${rc}    1
    ${rc}    ${out}=    Run Docker    exec    x38-host    /NonExisting
    Should Be Equal As Integers    ${rc}    127
    Should Contain    ${out}    exec: "/NonExisting": stat /NonExisting: no such file or directory
    ${rc}    ${out}=    Run Docker    exec    x38-host    nosuchcmd
    Should Be Equal As Integers    ${rc}    127
    Should Contain    ${out}    exec: "nosuchcmd": executable file not found in $PATH
    ${rc}    ${out}=    Run Docker    exec    x38-host    /etc/passwd
    Should Be Equal As Integers    ${rc}    126
    Should Contain    ${out}    exec: "/etc/passwd": permission denied

Exec Takes Environment, Working Directory And User
    [Teardown]    Run Docker    rm    -f    x38-env
    Docker Should Succeed    run    -d    --name    x38-env    -e    FROM_RUN=run-value    -w    /etc    ${BUSYBOX}
    ...    sleep    600
    ${out}=    Docker Should Succeed    exec    x38-env    sh    -c    echo $FROM_RUN; pwd
    Should Be Equal    ${out}    run-value\n/etc
    ${out}=    Docker Should Succeed    exec    -e    FROM_EXEC=exec-value    x38-env
    ...    sh    -c    echo $FROM_EXEC $FROM_RUN
    Should Be Equal    ${out}    exec-value run-value
    ${out}=    Docker Should Succeed    exec    -w    /tmp    x38-env    pwd
    Should Be Equal    ${out}    /tmp
    ${out}=    Docker Should Succeed    exec    -u    nobody    x38-env    id    -un
    Should Be Equal    ${out}    nobody

Exec Sees The Container's Processes And Files
    Docker Should Succeed    exec    x38-host    sh    -c    echo shared > /tmp/shared-file
    ${out}=    Docker Should Succeed    exec    x38-host    cat    /tmp/shared-file
    Should Be Equal    ${out}    shared
    ${out}=    Docker Should Succeed    exec    x38-host    ps
    Should Contain    ${out}    top -d 600

Interactive Exec On A Terminal
    ${term}=    Start Terminal    exec    -it    x38-host    sh    rows=25    cols=70
    Terminal Should Show    ${term}    / #
    Type Line    ${term}    stty size
    Terminal Should Show    ${term}    25 70
    Resize Terminal    ${term}    45    111
    Type Line    ${term}    stty size
    Terminal Should Show    ${term}    45 111
    Type Line    ${term}    echo inside-$((6 * 7))
    Terminal Should Show    ${term}    inside-42
    Type Line    ${term}    exit 5
    Terminal Should Exit With    ${term}    5

Several Execs At Once
    @{terms}=    Create List
    FOR    ${n}    IN RANGE    4
        ${term}=    Start Terminal    exec    x38-host
        ...    sh    -c    sleep 0.5; echo parallel-$((${n} + 100)); exit ${n}
        Append To List    ${terms}    ${term}
    END
    FOR    ${n}    ${term}    IN ENUMERATE    @{terms}
        ${expected}=    Evaluate    ${n} + 100
        Terminal Should Show    ${term}    parallel-${expected}
        Terminal Should Exit With    ${term}    ${n}
    END

Orphans Of An Exec Are Reaped
    [Tags]    embedded-only
    [Teardown]    Run Docker    rm    -f    x38-orphans
    Docker Should Succeed    run    -d    --name    x38-orphans    ${BUSYBOX}    sleep    602
    ${out}=    Docker Should Succeed    exec    x38-orphans    sh    -c
    ...    i=0; while [ $i -lt 20 ]; do sh -c "sleep 0.05 &"; i=$((i+1)); done; echo spawned
    Should Be Equal    ${out}    spawned
    Sleep    1s
    Container Should Have No Zombies    sleep 602

Execs End When Their Container Stops
    [Documentation]    Execs still running when the container is stopped end with it, killed (137).
    [Teardown]    Run Docker    rm    -f    x38-ending
    Docker Should Succeed    run    -d    --name    x38-ending    ${BUSYBOX}    sleep    600
    @{terms}=    Create List
    FOR    ${n}    IN RANGE    3
        ${term}=    Start Terminal    exec    x38-ending    sleep    500
        Append To List    ${terms}    ${term}
    END
    Wait Until Keyword Succeeds    40x    250ms    Top Should Show    x38-ending    sleep 500    times=3
    Docker Should Succeed    stop    -t    1    x38-ending
    @{codes}=    Create List
    FOR    ${term}    IN    @{terms}
        ${code}=    Wait For Terminal Exit    ${term}    timeout=30
        Append To List    ${codes}    ${code}
    END
    FOR    ${code}    IN    @{codes}
        Should Be Equal As Integers    ${code}    137    the execs ended with ${codes}, expected 137 each
    END

Exec In A Stopped Container Is Refused
    [Teardown]    Run Docker    rm    -f    x38-stopped
    ${id}=    Docker Should Succeed    run    -d    --name    x38-stopped    ${BUSYBOX}    sleep    600
    Docker Should Succeed    stop    -t    1    x38-stopped
    ${rc}    ${out}=    Run Docker    exec    x38-stopped    echo    hi
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    container ${id} is not running    ignore_case=True

Exec In A Missing Container Is Refused
    ${rc}    ${out}=    Run Docker    exec    x38-missing    echo    hi
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    No such container: x38-missing


*** Keywords ***
Top Should Show
    [Arguments]    ${name}    ${text}    ${times}=1
    ${out}=    Docker Should Succeed    top    ${name}
    Should Contain X Times    ${out}    ${text}    ${times}
