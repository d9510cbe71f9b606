*** Settings ***
Documentation       1-36 docker rename (after VIC's 1-36-Docker-Rename): created, running and stopped containers,
...                 VIC's refusals, and name resolution of the new name (links and the name server) after a rename.
Library             String
Library             ../libraries/VicRef.py
Suite Setup         Prepare Rename Suite
Suite Teardown      Finish Rename Suite
Test Teardown       Remove All Containers
Test Timeout        3 minutes


*** Variables ***
${PINGED}       2 packets transmitted, 2 packets received


*** Test Cases ***
Rename a non-existent container
    ${rc}    ${out}=    Run Docker    rename    foo    bar
    Should Not Be Equal As Integers    ${rc}    0
    Should Contain    ${out}    No such container: foo

Rename a created container
    ${id}=    Docker Should Succeed    create    --name    cont1-name1    ${BUSYBOX}
    ${rc}    ${out}=    Run Docker    rename    cont1-name1    cont1-name2
    Should Be Equal As Integers    ${rc}    0
    Should Not Contain    ${out}    Error
    Verify Container Rename    cont1-name1    cont1-name2    ${id}

Rename a running container
    ${id}=    Docker Should Succeed    run    -dit    --name    cont2-name1    ${BUSYBOX}
    ${rc}    ${out}=    Run Docker    rename    cont2-name1    cont2-name2
    Should Be Equal As Integers    ${rc}    0
    Should Not Contain    ${out}    Error
    Verify Container Rename    cont2-name1    cont2-name2    ${id}

Rename a stopped container
    ${id}=    Docker Should Succeed    run    -dit    --name    cont3-name1    ${BUSYBOX}
    Docker Should Succeed    stop    cont3-name1
    ${rc}    ${out}=    Run Docker    rename    cont3-name1    cont3-name2
    Should Be Equal As Integers    ${rc}    0
    Should Not Contain    ${out}    Error
    Docker Should Succeed    start    cont3-name2
    Verify Container Rename    cont3-name1    cont3-name2    ${id}

Rename a container with an empty name
    Docker Should Succeed    create    --name    cont4    ${BUSYBOX}
    ${rc}    ${out}=    Run Docker    rename    cont4    ${EMPTY}
    Should Not Be Equal As Integers    ${rc}    0
    Should Contain    ${out}    Neither old nor new names may be empty

Rename a container with a claimed name
    Docker Should Succeed    create    --name    cont5    ${BUSYBOX}
    Docker Should Succeed    create    --name    cont6    ${BUSYBOX}
    ${rc}    ${out}=    Run Docker    rename    cont5    cont5
    Should Not Be Equal As Integers    ${rc}    0
    Should Contain    ${out}    Error
    ${rc}    ${out}=    Run Docker    rename    cont5    cont6
    Should Not Be Equal As Integers    ${rc}    0
    Should Contain    ${out}    Error

Name resolution for a created container after renaming+starting it
    Docker Should Succeed    create    --name    cont7-name1    ${BUSYBOX}    /bin/top
    Docker Should Succeed    rename    cont7-name1    cont7-name2
    Docker Should Succeed    start    cont7-name2
    Names Should Resolve    cont7-name2    cont7alias

Name resolution for a running container after renaming+restarting it
    Docker Should Succeed    run    -dit    --name    cont8-name1    ${BUSYBOX}
    Docker Should Succeed    rename    cont8-name1    cont8-name2
    Docker Should Succeed    stop    cont8-name2
    Docker Should Succeed    start    cont8-name2
    Names Should Resolve    cont8-name2    cont8alias

Name resolution for a running container after renaming it
    Docker Should Succeed    run    -dit    --name    cont9-name1    ${BUSYBOX}
    Docker Should Succeed    rename    cont9-name1    cont9-name2
    Names Should Resolve    cont9-name2    cont9alias


*** Keywords ***
Verify Container Rename
    [Documentation]    VIC's check (Docker-Util.robot): ps -a shows the new name and not the old, inspect shows the
    ...    new name, and vSphere has the VM <new>-<shortID>.
    [Arguments]    ${old}    ${new}    ${id}
    ${out}=    Docker Should Succeed    ps    -a    --format    {{.Names}}
    @{names}=    Split To Lines    ${out}
    Should Contain    ${names}    ${new}
    Should Not Contain    ${names}    ${old}
    ${out}=    Docker Should Succeed    inspect    -f    {{.Name}}    ${new}
    Should Contain    ${out}    ${new}
    ${short}=    Get Substring    ${id}    0    12
    VM Should Exist    ${new}-${short}

Names Should Resolve
    [Documentation]    The renamed container answers to a link alias and to its new name.
    [Arguments]    ${name}    ${alias}
    ${rc}    ${out}=    Run Docker    run    --link    ${name}:${alias}    ${BUSYBOX}    ping    -c2    ${alias}
    Should Be Equal As Integers    ${rc}    0
    Should Contain    ${out}    ${PINGED}
    ${rc}    ${out}=    Run Docker    run    ${BUSYBOX}    ping    -c2    ${name}
    Should Be Equal As Integers    ${rc}    0
    Should Contain    ${out}    ${PINGED}

Prepare Rename Suite
    [Documentation]    The group's VCH (Start VCH is idempotent) and busybox.
    ${running}=    VCH Is Running
    Set Suite Variable    ${STARTED_HERE}    ${{not ${running}}}
    Start VCH
    ${image}=    Busybox Image
    Docker Should Succeed    pull    ${image}
    Set Suite Variable    ${BUSYBOX}    ${image}

Finish Rename Suite
    [Documentation]    Stop the VCH if this suite started it (run alone, not as part of the group).
    IF    ${STARTED_HERE}    Stop VCH
