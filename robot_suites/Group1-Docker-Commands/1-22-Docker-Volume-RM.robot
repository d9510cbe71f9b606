*** Settings ***
Documentation       1-22 docker volume rm (after VIC's 1-22-Docker-Volume-RM), rm -v of anonymous volumes (1-11) and
...                 volume prune as VIC answers it.
Library             String
Library             ../libraries/VicRef.py
Suite Setup         Prepare Volume Suite
Suite Teardown      Finish Volume Suite
Test Timeout        2 minutes


*** Test Cases ***
Simple Volume RM
    Docker Should Succeed    volume    create    --name\=v22-test2
    Docker Should Succeed    volume    rm    v22-test2
    ${out}=    Docker Should Succeed    volume    ls    -q
    Should Not Contain    ${out}    v22-test2

Volume RM Of A Volume In Use
    ${id}=    Docker Should Succeed    create    -v    v22-test:/test    ${BUSYBOX}
    ${rc}    ${out}=    Run Docker    volume    rm    v22-test
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    Error response from daemon: volume v22-test in use by ${id}
    Docker Should Succeed    rm    ${id}
    Docker Should Succeed    volume    rm    v22-test

Volume RM Of A Missing Volume
    ${rc}    ${out}=    Run Docker    volume    rm    v22-test3
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    Error response from daemon: Get v22-test3: no such volume

Remove A Container And Its Anonymous Volumes
    ${id}=    Docker Should Succeed    create    -v    v22-named:/named    -v    /anon    ${BUSYBOX}
    ${keys}=    Docker Should Succeed    inspect    -f    {{range \$k, \$v := .Config.Volumes}}{{\$k}} {{end}}    ${id}
    ${anon}=    Fetch From Left    ${keys.strip()}    :
    Docker Should Succeed    rm    -v    ${id}
    ${out}=    Docker Should Succeed    volume    ls    -q
    Should Contain    ${out}    v22-named
    Should Not Contain    ${out}    ${anon}

Anonymous Volume Used As Named Elsewhere Survives
    ${first}=    Docker Should Succeed    create    -v    /shared    ${BUSYBOX}
    ${key}=    Docker Should Succeed    inspect    -f    {{range \$k, \$v := .Config.Volumes}}{{\$k}}{{end}}    ${first}
    ${anon}=    Fetch From Left    ${key}    :
    ${second}=    Docker Should Succeed    create    -v    ${anon}:/data    ${BUSYBOX}
    Docker Should Succeed    rm    -v    ${first}
    Docker Should Succeed    rm    -v    ${second}
    ${out}=    Docker Should Succeed    volume    ls    -q
    Should Contain    ${out}    ${anon}
    Docker Should Succeed    run    --rm    -v    ${anon}:/data    ${BUSYBOX}    true

Run With Rm Keeps The Named Volume
    ${before}=    Docker Should Succeed    ps    -aq
    Docker Should Succeed    run    --rm    -v    v22-kept:/k    -v    /gone    ${BUSYBOX}    true
    ${after}=    Docker Should Succeed    ps    -aq
    Should Be Equal    ${after}    ${before}
    ${out}=    Docker Should Succeed    volume    ls    -q
    Should Contain    ${out}    v22-kept

Volume Prune Is Not Implemented
    ${rc}    ${out}=    Run Docker    volume    prune    -f
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    vSphere Integrated Containers does not yet implement VolumesPrune


*** Keywords ***
Prepare Volume Suite
    [Documentation]    The group's VCH (Start VCH is idempotent), busybox and the volume test images pulled.
    ${running}=    VCH Is Running
    Set Suite Variable    ${STARTED_HERE}    ${{not ${running}}}
    Start VCH
    ${image}=    Busybox Image
    Docker Should Succeed    pull    ${image}
    Set Suite Variable    ${BUSYBOX}    ${image}
    ${images}=    Push Volume Test Images
    Docker Should Succeed    pull    ${images}[vol-example]
    Docker Should Succeed    pull    ${images}[vol-mongo]
    Set Suite Variable    ${EXAMPLE}    ${images}[vol-example]
    Set Suite Variable    ${MONGO}    ${images}[vol-mongo]

Finish Volume Suite
    [Documentation]    Stop the VCH if this suite started it (run alone, not as part of the group).
    IF    ${STARTED_HERE}    Stop VCH
