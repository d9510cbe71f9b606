*** Settings ***
Documentation       1-21 docker volume ls: the table, -q and the filters dangling, name, driver and label (after VIC's
...                 1-21-Docker-Volume-LS).
Library             String
Library             ../libraries/VicRef.py
Suite Setup         Prepare LS Suite
Suite Teardown      Finish LS Suite
Test Timeout        2 minutes


*** Test Cases ***
Simple Volume LS
    ${rc}    ${out}=    Run Docker    volume    ls
    Should Be Equal As Integers    ${rc}    0
    Should Contain    ${out}    vsphere
    Should Contain    ${out}    v21-testVol
    Should Contain    ${out}    DRIVER
    Should Contain    ${out}    VOLUME NAME

Volume LS Quiet
    ${out}=    Docker Should Succeed    volume    ls    -q
    Should Contain    ${out}    v21-testVol
    Should Not Contain    ${out}    vsphere
    Should Not Contain    ${out}    DRIVER

Volume LS With Bogus Filter
    ${rc}    ${out}=    Run Docker    volume    ls    -f    bogusfilter\=test
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    Error response from daemon: Invalid filter 'bogusfilter'

Volume LS Dangling Filter
    ${out}=    Docker Should Succeed    volume    ls    -q    -f    dangling\=true
    Should Contain    ${out}    v21-danglingVol
    Should Not Contain    ${out}    v21-testVol
    ${out}=    Docker Should Succeed    volume    ls    -q    -f    dangling\=false
    Should Contain    ${out}    v21-testVol
    Should Not Contain    ${out}    v21-danglingVol

Volume LS Name Filter
    ${out}=    Docker Should Succeed    volume    ls    -q    -f    name\=v21-dang
    Should Be Equal    ${out}    v21-danglingVol

Volume LS Driver Filter
    ${out}=    Docker Should Succeed    volume    ls    -q    -f    driver\=vsphere
    Should Contain    ${out}    v21-testVol
    Should Contain    ${out}    v21-danglingVol
    ${out}=    Docker Should Succeed    volume    ls    -q    -f    driver\=vsph
    Should Be Empty    ${out}

Volume LS Label Filter
    ${out}=    Docker Should Succeed    volume    ls    -q    -f    label\=v21-labeled
    Should Be Equal    ${out}    v21-labelVol

Volume LS Multiple Filters
    ${out}=    Docker Should Succeed    volume    ls    -q    -f    dangling\=true    -f    name\=v21-dang
    Should Be Equal    ${out}    v21-danglingVol
    ${out}=    Docker Should Succeed    volume    ls    -q    -f    dangling\=false    -f    name\=v21-dang
    Should Be Empty    ${out}


*** Keywords ***
Prepare LS Suite
    Prepare Volume Suite
    Docker Should Succeed    volume    create    --name\=v21-testVol
    Docker Should Succeed    volume    create    --name\=v21-danglingVol
    Docker Should Succeed    volume    create    --name\=v21-labelVol    --label\=v21-labeled
    ${id}=    Docker Should Succeed    create    -v    v21-testVol:/test    ${BUSYBOX}
    Set Suite Variable    ${USER_OF_TESTVOL}    ${id}

Finish LS Suite
    Run Docker    rm    ${USER_OF_TESTVOL}
    Finish Volume Suite

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
