*** Settings ***
Documentation       1-20 docker volume inspect (after VIC's 1-20-Docker-Volume-Inspect).
Library             String
Library             ../libraries/VicRef.py
Suite Setup         Prepare Volume Suite
Suite Teardown      Finish Volume Suite
Test Timeout        2 minutes


*** Test Cases ***
Simple Docker Volume Inspect
    Docker Should Succeed    volume    create    --name\=v20-test
    ${out}=    Docker Should Succeed    volume    inspect    v20-test
    ${volumes}=    Evaluate    json.loads($out)    modules=json
    Should Be Equal    ${volumes}[0][Name]    v20-test
    Should Be Equal    ${volumes}[0][Driver]    vsphere
    Should Match Regexp    ${volumes}[0][Mountpoint]    ^[0-9a-f]{16}$

Docker Volume Inspect Invalid Object
    [Documentation]    VIC's client printed `Error: No such volume`; today's CLI puts the daemon's text after its own.
    ${rc}    ${out}=    Run Docker    volume    inspect    fakeVolume
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    No such volume: fakeVolume

Docker Volume Inspect Capacity Option
    Docker Should Succeed    volume    create    --name\=v20-cap    --opt    Capacity\=200MB
    ${capacity}=    Docker Should Succeed    volume    inspect    -f    {{.Options.Capacity}}    v20-cap
    Should Be Equal    ${capacity}    200MB

Docker Volume Inspect Labels
    Docker Should Succeed    volume    create    --name\=v20-labels    --label    team\=blue    --label    solo
    ${labels}=    Docker Should Succeed    volume    inspect    -f    {{json .Labels}}    v20-labels
    Should Be Equal    ${labels}    {"solo":"","team":"blue"}


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
