*** Settings ***
Documentation       11-01 Upgrade, adapted from VIC's tests/test-cases/Group11-Upgrade/11-01-Upgrade.robot: busybox
...                 instead of nginx (no port mapping in vic-ref); the old release is vic-ref's 0.0.9 (data version
...                 3, before rename) instead of VIC 1.2.1. A 1-second timeout needs a busy target: the sim is told to
...                 answer the power on late.
Library             ../libraries/VicRef.py
Library             Collections


*** Variables ***
${OLD}      0.0.9


*** Test Cases ***
Upgrade Present In vic-machine
    ${rc}    ${output}=    Run VIC Machine    --help
    Should Be Equal As Integers    ${rc}    0
    Should Contain    ${output}    upgrade
    Should Contain    ${output}    rollback

Upgrade VCH With 1s Timeout
    Slow Down Sim Method    PowerOnVM_Task    1.5
    ${rc}    ${output}=    Run VIC Machine    upgrade    --name    vic-ref    --timeout    1s
    Should Not Be Equal As Integers    ${rc}    0
    Should Contain    ${output}    Upgrading VCH exceeded time limit
    Should Contain    ${output}    Rolling back upgrade
    Should Not Contain    ${output}    Completed successfully
    ${snapshots}=    Appliance Snapshots
    Should Be Empty    ${snapshots}
    ${version}=    VCH Version
    Should Be Equal    ${version}    ${OLD}
    Docker Should Succeed    version

Upgrade VCH
    Create Containers
    ${rc}    ${output}=    Run VIC Machine    upgrade    --name    vic-ref
    Should Be Equal As Integers    ${rc}    0    ${output}
    Should Contain    ${output}    Completed successfully
    Should Not Contain    ${output}    Rolling back upgrade
    ${version}=    VCH Version
    Should Not Be Equal    ${version}    ${OLD}
    Check Containers
    ${rc}    ${output}=    Run VIC Machine    upgrade    --name    vic-ref    --rollback
    Should Be Equal As Integers    ${rc}    0    ${output}
    Should Contain    ${output}    Completed successfully
    ${version}=    VCH Version
    Should Be Equal    ${version}    ${OLD}
    Check Containers
    ${rc}    ${output}=    Run VIC Machine    upgrade    --name    vic-ref
    Should Be Equal As Integers    ${rc}    0    ${output}
    Check Containers
    ${rc}    ${output}=    Run VIC Machine    upgrade    --name    vic-ref
    Should Not Be Equal As Integers    ${rc}    0
    Should Contain    ${output}    has same or newer version
    # new containers on the upgraded VCH
    Docker Should Succeed    create    --name    new-vch-cont1    ${BUSYBOX}    /bin/top
    Docker Should Succeed    rename    new-vch-cont1    new-vch-cont2
    ${names}=    Docker Should Succeed    ps    -a    --format    {{.Names}}
    Should Contain    ${names}    new-vch-cont2
    Docker Should Succeed    stop    vch-restart-test1
    Docker Should Succeed    start    vch-restart-test1

A Second Upgrade While One Runs Is Refused
    ${rc}    ${output}=    Run VIC Machine    rollback    --name    vic-ref
    Should Be Equal As Integers    ${rc}    0    ${output}
    Slow Down Sim Method    CreateSnapshot_Task    2
    ${first}=    Start Upgrade In Background    --name    vic-ref
    Sleep    1s
    ${rc}    ${output}=    Run VIC Machine    upgrade    --name    vic-ref
    Should Not Be Equal As Integers    ${rc}    0
    Should Contain    ${output}    another upgrade/configure operation is in progress
    ${rc}    ${output}=    Wait For VIC Machine    ${first}
    Should Be Equal As Integers    ${rc}    0    ${output}
    Should Contain    ${output}    Completed successfully
    Check Containers

Rename Of An Old Stopped Container After Upgrade
    [Tags]    needs-old-rename
    Docker Should Succeed    rename    old-off    old-off-renamed
    Docker Should Succeed    start    old-off-renamed
    ${hosts}=    Docker Should Succeed    exec    old-off-renamed    cat    /etc/hosts
    Should Contain    ${hosts}    old-off-renamed
    ${out}=    Docker Should Succeed    run    --rm    ${BUSYBOX}    ping    -c1    old-off-renamed
    Should Contain    ${out}    1 packets received

Rename Of An Old Running Container After Upgrade
    [Tags]    needs-old-rename
    Docker Should Succeed    rename    vch-restart-test2    renamed-test2
    ${out}=    Docker Should Succeed    run    --rm    --net    bar    ${BUSYBOX}    ping    -c1    renamed-test2
    Should Contain    ${out}    1 packets received
    ${hosts}=    Docker Should Succeed    exec    renamed-test2    cat    /etc/hosts
    Should Contain    ${hosts}    vch-restart-test2
    Should Not Contain    ${hosts}    renamed-test2
    ${until}=    Evaluate    str(int(__import__('time').time()) + 2)
    Sleep    2s
    ${events}=    Docker Should Succeed    events    --since    5m    --until    ${until}    --filter    event=rename
    Should Contain    ${events}    was renamed from vch-restart-test2 while running


*** Keywords ***
Create Containers
    Docker Should Succeed    network    create    bar
    ${id1}=    Docker Should Succeed    run    -itd    --name    vch-restart-test1    ${BUSYBOX}
    ${id2}=    Docker Should Succeed    run    -itd    --name    vch-restart-test2    --net    bar    ${BUSYBOX}
    Docker Should Succeed    create    --name    old-off    ${BUSYBOX}    /bin/top
    Docker Should Succeed    volume    create    --name    named-volume
    Docker Should Succeed    run    -d    --name    mount-data-test    -v    /mnt/test    -v    named-volume:/mnt/named
    ...    ${BUSYBOX}    /bin/top
    ${ip1}=    Docker Should Succeed    inspect    -f    {{.NetworkSettings.Networks.bridge.IPAddress}}    vch-restart-test1
    ${ip2}=    Docker Should Succeed    inspect    -f    {{.NetworkSettings.Networks.bar.IPAddress}}    vch-restart-test2
    Should Not Be Empty    ${ip1}
    Should Not Be Empty    ${ip2}
    Set Suite Variable    ${IP1}    ${ip1}
    Set Suite Variable    ${IP2}    ${ip2}
    ${hosts}=    Docker Should Succeed    exec    vch-restart-test1    cat    /etc/hosts
    Should Contain    ${hosts}    vch-restart-test1

Check Containers
    ${networks}=    Docker Should Succeed    network    ls
    Should Contain    ${networks}    bar
    ${ip1}=    Docker Should Succeed    inspect    -f    {{.NetworkSettings.Networks.bridge.IPAddress}}    vch-restart-test1
    ${ip2}=    Docker Should Succeed    inspect    -f    {{.NetworkSettings.Networks.bar.IPAddress}}    vch-restart-test2
    Should Be Equal    ${ip1}    ${IP1}
    Should Be Equal    ${ip2}    ${IP2}
    ${running}=    Docker Should Succeed    ps    --format    {{.Names}}
    Should Contain    ${running}    vch-restart-test1
    Should Contain    ${running}    vch-restart-test2
    Should Contain    ${running}    mount-data-test
    ${all}=    Docker Should Succeed    ps    -a    --format    {{.Names}}
    Should Contain    ${all}    old-off
    ${mounts}=    Docker Should Succeed    inspect    -f    {{range .Mounts}}{{.Destination}} {{.Name}} {{end}}    mount-data-test
    Should Contain    ${mounts}    /mnt/test
    Should Contain    ${mounts}    /mnt/named
    Should Contain    ${mounts}    named-volume
